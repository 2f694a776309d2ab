/**
 * What the emulated account offers: regions, sizes and distribution images, as the real API
 * lists them (https://docs.digitalocean.com/reference/api/digitalocean/#tag/Regions). Only
 * debian-12-x64 is offered, because it is the only one backed by a real root file system.
 */

export interface RegionSpec {
  slug: string;
  name: string;
}

export const REGIONS: RegionSpec[] = [
  { slug: 'nyc1', name: 'New York 1' },
  { slug: 'nyc3', name: 'New York 3' },
  { slug: 'sfo3', name: 'San Francisco 3' },
  { slug: 'ams3', name: 'Amsterdam 3' },
  { slug: 'fra1', name: 'Frankfurt 1' },
  { slug: 'lon1', name: 'London 1' },
  { slug: 'sgp1', name: 'Singapore 1' },
  { slug: 'tor1', name: 'Toronto 1' },
  { slug: 'blr1', name: 'Bangalore 1' },
  { slug: 'syd1', name: 'Sydney 1' },
];

export const REGION_FEATURES = ['backups', 'ipv6', 'metadata', 'install_agent', 'storage', 'image_transfer'];

export interface SizeSpec {
  slug: string;
  memory: number;
  vcpus: number;
  disk: number;
  transfer: number;
  price_monthly: number;
  price_hourly: number;
  description: string;
}

export const SIZES: SizeSpec[] = [
  { slug: 's-1vcpu-512mb-10gb', memory: 512, vcpus: 1, disk: 10, transfer: 0.5, price_monthly: 4, price_hourly: 0.00595, description: 'Basic' },
  { slug: 's-1vcpu-1gb', memory: 1024, vcpus: 1, disk: 25, transfer: 1, price_monthly: 6, price_hourly: 0.00893, description: 'Basic' },
  { slug: 's-1vcpu-2gb', memory: 2048, vcpus: 1, disk: 50, transfer: 2, price_monthly: 12, price_hourly: 0.01786, description: 'Basic' },
  { slug: 's-2vcpu-2gb', memory: 2048, vcpus: 2, disk: 60, transfer: 3, price_monthly: 18, price_hourly: 0.02679, description: 'Basic' },
  { slug: 's-2vcpu-4gb', memory: 4096, vcpus: 2, disk: 80, transfer: 4, price_monthly: 24, price_hourly: 0.03571, description: 'Basic' },
  { slug: 's-4vcpu-8gb', memory: 8192, vcpus: 4, disk: 160, transfer: 5, price_monthly: 48, price_hourly: 0.07143, description: 'Basic' },
];

export interface DistributionSpec {
  id: number;
  slug: string;
  name: string;
  distribution: string;
  description: string;
  minDiskSize: number;
  sizeGigabytes: number;
  createdAt: string;
}

export const DISTRIBUTIONS: DistributionSpec[] = [
  {
    id: 161895436,
    slug: 'debian-12-x64',
    name: '12 x64',
    distribution: 'Debian',
    description: 'Debian 12 (bookworm) x64, a real root file system in this emulator',
    minDiskSize: 7,
    sizeGigabytes: 0.5,
    createdAt: '2024-07-25T18:30:51Z',
  },
];
