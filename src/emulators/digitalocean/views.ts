/** Resources rendered as DigitalOcean's API answers them (the OpenAPI description's schemas). */
import { DISTRIBUTIONS, REGION_FEATURES, REGIONS, SIZES, type SizeSpec } from './catalog.js';
import type { Action, Droplet, Image, SshKey } from './model.js';

export function regionView(slug: string) {
  const region = REGIONS.find((r) => r.slug === slug) ?? { slug, name: slug };
  return { name: region.name, slug: region.slug, features: REGION_FEATURES, available: true, sizes: SIZES.map((s) => s.slug) };
}

export function sizeView(size: SizeSpec) {
  return {
    slug: size.slug,
    memory: size.memory,
    vcpus: size.vcpus,
    disk: size.disk,
    transfer: size.transfer,
    price_monthly: size.price_monthly,
    price_hourly: size.price_hourly,
    regions: REGIONS.map((r) => r.slug),
    available: true,
    description: size.description,
    disk_info: [{ type: 'local', size: { amount: size.disk, unit: 'gib' } }],
  };
}

export function imageView(image: Image) {
  return {
    id: image.id,
    name: image.name,
    type: image.type,
    distribution: image.distribution,
    slug: image.slug,
    public: image.public,
    regions: image.regions,
    created_at: image.createdAt,
    min_disk_size: image.minDiskSize,
    size_gigabytes: image.sizeGigabytes,
    description: image.description,
    tags: image.tags,
    status: image.status,
    error_message: '',
  };
}

export function distributionImages(layer: string): Image[] {
  return DISTRIBUTIONS.map((d) => ({
    id: d.id,
    name: d.name,
    type: 'base',
    distribution: d.distribution,
    slug: d.slug,
    public: true,
    regions: REGIONS.map((r) => r.slug),
    createdAt: d.createdAt,
    minDiskSize: d.minDiskSize,
    sizeGigabytes: d.sizeGigabytes,
    description: d.description,
    tags: [],
    status: 'available',
    layer,
  }));
}

export function dropletView(droplet: Droplet, image: Image) {
  const v4 = droplet.ip
    ? [
        { ip_address: droplet.ip, netmask: '255.0.0.0', gateway: '127.0.0.1', type: 'public' },
        { ip_address: droplet.ip, netmask: '255.0.0.0', gateway: '127.0.0.1', type: 'private' },
      ]
    : [];
  return {
    id: droplet.id,
    name: droplet.name,
    memory: droplet.size.memory,
    vcpus: droplet.size.vcpus,
    disk: droplet.size.disk,
    disk_info: [{ type: 'local', size: { amount: droplet.size.disk, unit: 'gib' } }],
    locked: droplet.locked,
    status: droplet.status,
    kernel: null,
    created_at: droplet.createdAt,
    features: droplet.ip ? ['private_networking'] : [],
    backup_ids: [],
    next_backup_window: null,
    snapshot_ids: droplet.snapshotIds,
    image: imageView(image),
    volume_ids: [],
    size: sizeView(droplet.size),
    size_slug: droplet.size.slug,
    networks: { v4, v6: [] },
    region: regionView(droplet.region),
    tags: droplet.tags,
    vpc_uuid: droplet.vpcUuid,
  };
}

export function actionView(action: Action) {
  return {
    id: action.id,
    status: action.status,
    type: action.type,
    started_at: action.startedAt,
    completed_at: action.completedAt,
    resource_id: action.resourceId,
    resource_type: action.resourceType,
    region: regionView(action.region),
    region_slug: action.region,
  };
}

export function keyView(key: SshKey) {
  return { id: key.id, fingerprint: key.fingerprint, public_key: key.publicKey, name: key.name };
}

/** An image of type snapshot as /v2/snapshots lists it (ids as strings there). */
export function snapshotView(image: Image) {
  return {
    id: String(image.id),
    name: image.name,
    created_at: image.createdAt,
    regions: image.regions,
    min_disk_size: image.minDiskSize,
    size_gigabytes: image.sizeGigabytes,
    resource_id: String(image.dropletId ?? ''),
    resource_type: 'droplet',
    tags: image.tags,
  };
}

/** An image as /v2/droplets/{id}/snapshots lists it (integer ids there). */
export function dropletSnapshotView(image: Image) {
  return {
    id: image.id,
    name: image.name,
    created_at: image.createdAt,
    regions: image.regions,
    min_disk_size: image.minDiskSize,
    size_gigabytes: image.sizeGigabytes,
    type: 'snapshot',
  };
}
