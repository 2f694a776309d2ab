/** The parts of DigitalOcean's API objects this provider reads (see the OpenAPI description). */
export interface Droplet {
  id: number;
  name: string;
  status: 'new' | 'active' | 'off' | 'archive';
  locked?: boolean;
  tags?: string[];
  networks?: { v4?: { ip_address: string; type: 'public' | 'private' }[] };
  created_at?: string;
}

export interface Image {
  id: number | string;
  name: string;
  type?: 'base' | 'snapshot' | 'backup' | 'custom' | 'admin';
  distribution?: string;
  slug?: string | null;
  public?: boolean;
  regions?: string[];
  created_at?: string;
  min_disk_size?: number;
  size_gigabytes?: number;
  description?: string;
  status?: 'NEW' | 'available' | 'pending' | 'deleted' | 'retired';
  tags?: string[];
}

export interface Action {
  id: number;
  status: 'in-progress' | 'completed' | 'errored';
  type: string;
  resource_id?: number;
}

export interface SshKey {
  id: number;
  fingerprint: string;
  public_key: string;
  name: string;
}
