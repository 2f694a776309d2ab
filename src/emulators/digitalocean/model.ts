/** The emulated account's resources, as the emulator keeps them (views.ts renders them as the API does). */
import type { SizeSpec } from './catalog.js';

export type DropletStatus = 'new' | 'active' | 'off' | 'archive';

export interface Droplet {
  id: number;
  name: string;
  region: string;
  size: SizeSpec;
  /** The image it was created from, rendered at creation time (as the API keeps it). */
  imageId: number;
  tags: string[];
  createdAt: string;
  status: DropletStatus;
  locked: boolean;
  /** The machine behind it, once created. */
  machineId?: string;
  /** Its address, once active (never, under the noAddress fault). */
  ip?: string;
  snapshotIds: number[];
  actionIds: number[];
  vpcUuid: string;
  deleted: boolean;
}

export interface Image {
  id: number;
  name: string;
  type: 'base' | 'snapshot';
  distribution: string;
  slug: string | null;
  public: boolean;
  regions: string[];
  createdAt: string;
  minDiskSize: number;
  sizeGigabytes: number;
  description: string;
  tags: string[];
  status: 'available' | 'pending' | 'deleted';
  /** Machine layer it boots from. */
  layer: string;
  /** For snapshots: the droplet it was taken of. */
  dropletId?: number;
}

export type ActionStatus = 'in-progress' | 'completed' | 'errored';

export interface Action {
  id: number;
  status: ActionStatus;
  type: string;
  startedAt: string;
  completedAt: string | null;
  resourceId: number;
  resourceType: 'droplet' | 'image' | 'reserved_ip';
  region: string;
}

export interface SshKey {
  id: number;
  name: string;
  publicKey: string;
  fingerprint: string;
}
