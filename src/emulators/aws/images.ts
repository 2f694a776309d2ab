/**
 * AMIs and their EBS snapshots: CreateImage, DescribeImages, DeregisterImage, CopyImage,
 * DescribeSnapshots, DeleteSnapshot. An image's data is its snapshot's layer in the instance
 * backend: CreateImage captures the instance's disk, CopyImage shares the layer with the copy, and
 * the layer goes when the last snapshot holding it is deleted. Deregistering an AMI leaves its
 * snapshots (as EC2 does, unless DeleteAssociatedSnapshots), so forgetting them leaks.
 *
 * CreateImage on a running instance without NoReboot shuts the machine down, captures its disk and
 * boots it again (the instance stays `running` in the API meanwhile, as EC2's reboot does).
 */
import { ACCOUNT_ID, type Ec2Cloud, type Handler } from './cloud.js';
import { checkIdFormat, Ec2Error, notFound } from './errors.js';
import type { Params } from './query.js';
import {
  applyFilters,
  newId,
  paginate,
  tagsXml,
  tagSpecifications,
  type FilterFields,
  type Image,
  type RegionState,
  type Snapshot,
  type Tags,
} from './resources.js';
import type { XmlObject } from './xml.js';
import { ROOT_DEVICE } from './volumes.js';

const FAILED = { code: 'Server.InternalError', message: 'Server.InternalError: Internal error' };

export function imageXml(region: RegionState, image: Image): XmlObject {
  return {
    imageId: image.id,
    imageLocation: `${image.ownerId}/${image.name}`,
    imageState: image.state,
    imageOwnerId: image.ownerId,
    creationDate: image.creationDate.toISOString(),
    isPublic: image.public,
    architecture: image.architecture,
    imageType: 'machine',
    platformDetails: 'Linux/UNIX',
    usageOperation: 'RunInstances',
    imageOwnerAlias: image.ownerAlias,
    sourceInstanceId: image.sourceInstanceId,
    sourceImageId: image.sourceImageId,
    sourceImageRegion: image.sourceRegion,
    name: image.name,
    description: image.description,
    rootDeviceType: 'ebs',
    rootDeviceName: ROOT_DEVICE,
    blockDeviceMapping: image.snapshotIds.map((snapshotId) => ({
      deviceName: ROOT_DEVICE,
      ebs: {
        deleteOnTermination: true,
        snapshotId,
        volumeSize: region.snapshots.get(snapshotId)?.volumeSize ?? 8,
        volumeType: 'gp3',
        encrypted: false,
      },
    })),
    virtualizationType: 'hvm',
    hypervisor: 'xen',
    enaSupport: true,
    sriovNetSupport: 'simple',
    stateReason: image.stateReason,
    tagSet: tagsXml(image.tags),
    bootMode: 'uefi-preferred',
  };
}

function snapshotXml(snapshot: Snapshot): XmlObject {
  return {
    snapshotId: snapshot.id,
    volumeId: snapshot.volumeId,
    status: snapshot.state,
    startTime: snapshot.startTime,
    progress: snapshot.state === 'completed' ? '100%' : '0%',
    ownerId: snapshot.ownerId,
    volumeSize: snapshot.volumeSize,
    description: snapshot.description,
    encrypted: false,
    storageTier: 'standard',
    tagSet: tagsXml(snapshot.tags),
  };
}

const IMAGE_FILTERS: FilterFields<Image> = {
  'image-id': (i) => i.id,
  name: (i) => i.name,
  state: (i) => i.state,
  'owner-id': (i) => i.ownerId,
  'owner-alias': (i) => i.ownerAlias,
  architecture: (i) => i.architecture,
  'is-public': (i) => String(i.public),
  'image-type': () => 'machine',
  'root-device-type': () => 'ebs',
  'root-device-name': () => ROOT_DEVICE,
  'virtualization-type': () => 'hvm',
  hypervisor: () => 'xen',
  description: (i) => i.description,
  'block-device-mapping.snapshot-id': (i) => i.snapshotIds,
  'source-instance-id': (i) => i.sourceInstanceId,
};

const SNAPSHOT_FILTERS: FilterFields<Snapshot> = {
  'snapshot-id': (s) => s.id,
  status: (s) => s.state,
  'owner-id': (s) => s.ownerId,
  'volume-id': (s) => s.volumeId,
  'volume-size': (s) => String(s.volumeSize),
  description: (s) => s.description,
  encrypted: () => 'false',
  progress: (s) => (s.state === 'completed' ? '100%' : '0%'),
};

function checkImageName(region: RegionState, name: string): void {
  if (name.length < 3 || name.length > 128 || !/^[A-Za-z0-9()[\] ./\-'@_]+$/.test(name)) {
    throw new Ec2Error('InvalidAMIName.Malformed', `AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'`);
  }
  const taken = [...region.images.values()].find((i) => i.ownerId === ACCOUNT_ID && i.name === name);
  if (taken) throw new Ec2Error('InvalidAMIName.Duplicate', `AMI name ${name} is already in use by AMI ${taken.id}`);
}

function newSnapshot(region: RegionState, volumeId: string, description: string, tags: Tags): Snapshot {
  const snapshot: Snapshot = {
    id: newId('snap'),
    ownerId: ACCOUNT_ID,
    state: 'pending',
    startTime: new Date(),
    volumeId,
    volumeSize: region.volumes.get(volumeId)?.size ?? 8,
    description,
    deleted: false,
    tags,
  };
  region.snapshots.set(snapshot.id, snapshot);
  return snapshot;
}

function takeImageFault(cloud: Ec2Cloud): boolean {
  if (cloud.faults.failImages <= 0) return false;
  cloud.faults.failImages--;
  return true;
}

/** A snapshot's layer arrived: held, unless the snapshot was deleted meanwhile. */
async function attachLayer(cloud: Ec2Cloud, snapshot: Snapshot, layer: string): Promise<void> {
  cloud.holdLayer(layer);
  if (snapshot.deleted) await cloud.releaseLayer(layer);
  else snapshot.layer = layer;
}

const createImage: Handler = (cloud, region, params) => {
  const instanceId = params.required('InstanceId');
  checkIdFormat(instanceId, 'i', 'InvalidInstanceID.Malformed');
  const instance = region.instances.get(instanceId);
  if (!instance) throw notFound('instance', [instanceId]);
  const name = params.required('Name');
  if (instance.state !== 'running' && instance.state !== 'stopped') {
    throw new Ec2Error('IncorrectInstanceState', `The instance '${instanceId}' is not in a state from which it can be imaged (${instance.state}).`);
  }
  checkImageName(region, name);
  const noReboot = params.bool('NoReboot') ?? false;
  const imageTags = tagSpecifications(params, 'image', ['image', 'snapshot']);
  const snapshotTags = tagSpecifications(params, 'snapshot', ['image', 'snapshot']);
  const imageId = newId('ami');
  const snapshot = newSnapshot(region, instance.volumeId, `Created by CreateImage(${instanceId}) for ${imageId}`, snapshotTags);
  const image: Image = {
    id: imageId,
    name,
    description: params.str('Description'),
    ownerId: ACCOUNT_ID,
    public: false,
    state: 'pending',
    creationDate: new Date(),
    architecture: instance.architecture,
    snapshotIds: [snapshot.id],
    sourceInstanceId: instanceId,
    launchUserIds: [],
    tags: imageTags,
  };
  region.images.set(image.id, image);
  const fail = takeImageFault(cloud);
  cloud.enqueue(instance, async () => {
    const machine = instance.machine;
    if (fail || !machine) {
      await cloud.sleep(cloud.delays.imagePendingMs);
      image.state = 'failed';
      image.stateReason = FAILED;
      snapshot.state = 'error';
      return;
    }
    let layer: string;
    if (instance.state === 'running' && !noReboot) {
      await cloud.backend.stop(machine);
      layer = await cloud.backend.snapshot(machine);
      await cloud.backend.start(machine);
    } else {
      layer = await cloud.backend.snapshot(machine);
    }
    await attachLayer(cloud, snapshot, layer);
    // The image completes later, without holding up the instance's other work.
    cloud.background(async () => {
      await cloud.sleep(cloud.delays.imagePendingMs);
      snapshot.state = 'completed';
      image.state = 'available';
    });
  });
  return { imageId };
};

function ownerMatches(image: Image, owners: string[]): boolean {
  return owners.some((owner) => (owner === 'self' ? image.ownerId === ACCOUNT_ID : owner === image.ownerId || owner === image.ownerAlias));
}

const describeImages: Handler = (_cloud, region, params) => {
  const ids = params.strings('ImageId');
  const owners = params.strings('Owner');
  const executableBy = params.strings('ExecutableBy');
  let images: Image[];
  if (ids.length) {
    for (const id of ids) checkIdFormat(id, 'ami', 'InvalidAMIID.Malformed');
    const missing = ids.filter((id) => !region.images.has(id));
    if (missing.length) throw notFound('image', missing);
    images = ids.map((id) => region.images.get(id)!);
  } else {
    images = [...region.images.values()];
  }
  if (owners.length) images = images.filter((i) => ownerMatches(i, owners));
  if (executableBy.length) {
    const launchable = (i: Image, who: string) =>
      who === 'all' ? i.public : i.public || i.launchUserIds.includes(who === 'self' ? ACCOUNT_ID : who) || (who === 'self' && i.ownerId === ACCOUNT_ID);
    images = images.filter((i) => executableBy.some((who) => launchable(i, who)));
  }
  images = applyFilters(images, params, IMAGE_FILTERS);
  const { page, nextToken } = paginate(images, params, 'DescribeImages', { min: 1, max: 1000 });
  return { imagesSet: page.map((i) => imageXml(region, i)), nextToken };
};

export function ownImage(region: RegionState, params: Params): Image {
  const imageId = params.required('ImageId');
  checkIdFormat(imageId, 'ami', 'InvalidAMIID.Malformed');
  const image = region.images.get(imageId);
  if (!image) throw notFound('image', [imageId]);
  if (image.ownerId !== ACCOUNT_ID) throw new Ec2Error('AuthFailure', `Not authorized for image:${imageId}`, 400);
  return image;
}

function snapshotInUse(region: RegionState, snapshotId: string): Image | undefined {
  return [...region.images.values()].find((i) => i.snapshotIds.includes(snapshotId));
}

async function deleteSnapshot(cloud: Ec2Cloud, region: RegionState, snapshot: Snapshot): Promise<void> {
  snapshot.deleted = true;
  region.snapshots.delete(snapshot.id);
  if (snapshot.layer) await cloud.releaseLayer(snapshot.layer);
}

const deregisterImage: Handler = async (cloud, region, params) => {
  const image = ownImage(region, params);
  region.images.delete(image.id);
  const results: XmlObject[] = [];
  if (params.bool('DeleteAssociatedSnapshots')) {
    for (const snapshotId of image.snapshotIds) {
      const snapshot = region.snapshots.get(snapshotId);
      if (!snapshot) continue;
      if (snapshotInUse(region, snapshotId)) {
        results.push({ snapshotId, returnCode: 'skipped' });
        continue;
      }
      await deleteSnapshot(cloud, region, snapshot);
      results.push({ snapshotId, returnCode: 'success' });
    }
  }
  return { return: true, deleteSnapshotResultSet: results.length ? results : undefined };
};

const copyImage: Handler = (cloud, region, params) => {
  const sourceRegionName = params.required('SourceRegion');
  const sourceImageId = params.required('SourceImageId');
  const name = params.required('Name');
  const sourceRegion = cloud.regions.get(sourceRegionName);
  if (!sourceRegion) throw new Ec2Error('InvalidParameterValue', `Invalid source region: ${sourceRegionName}`);
  checkIdFormat(sourceImageId, 'ami', 'InvalidAMIID.Malformed');
  const source = sourceRegion.images.get(sourceImageId);
  if (!source) throw notFound('image', [sourceImageId]);
  const clientToken = params.str('ClientToken');
  if (clientToken && region.clientTokens.has(clientToken)) return { imageId: region.clientTokens.get(clientToken) };
  const layer = cloud.imageLayer(sourceRegion, source);
  if (source.state !== 'available' || !layer) {
    throw new Ec2Error('IncorrectState', `Image ${sourceImageId} is not in a state from which it can be copied (${source.state}).`);
  }
  checkImageName(region, name);
  const imageTags: Tags = params.bool('CopyImageTags') ? new Map(source.tags) : new Map();
  for (const [key, value] of tagSpecifications(params, 'image', ['image', 'snapshot'])) imageTags.set(key, value);
  const imageId = newId('ami');
  const snapshot = newSnapshot(
    region,
    'vol-ffffffff',
    `Copied for DestinationAmi ${imageId} from SourceAmi ${sourceImageId} for SourceSnapshot ${source.snapshotIds[0]}.`,
    tagSpecifications(params, 'snapshot', ['image', 'snapshot']),
  );
  const image: Image = {
    id: imageId,
    name,
    description: params.str('Description') ?? source.description,
    ownerId: ACCOUNT_ID,
    public: false,
    state: 'pending',
    creationDate: new Date(),
    architecture: source.architecture,
    snapshotIds: [snapshot.id],
    sourceImageId,
    sourceRegion: sourceRegionName,
    launchUserIds: [],
    tags: imageTags,
  };
  region.images.set(imageId, image);
  if (clientToken) region.clientTokens.set(clientToken, imageId);
  const fail = takeImageFault(cloud);
  if (!fail) {
    cloud.holdLayer(layer);
    snapshot.layer = layer;
  }
  cloud.background(async () => {
    await cloud.sleep(cloud.delays.copyImageMs);
    if (fail) {
      image.state = 'failed';
      image.stateReason = FAILED;
      snapshot.state = 'error';
    } else {
      snapshot.state = 'completed';
      image.state = 'available';
    }
  });
  return { imageId };
};

const describeSnapshots: Handler = (_cloud, region, params) => {
  const ids = params.strings('SnapshotId');
  const owners = params.strings('Owner');
  let snapshots: Snapshot[];
  if (ids.length) {
    for (const id of ids) checkIdFormat(id, 'snap', 'InvalidSnapshotID.Malformed');
    const missing = ids.filter((id) => !region.snapshots.has(id));
    if (missing.length) throw notFound('snapshot', missing);
    snapshots = ids.map((id) => region.snapshots.get(id)!);
  } else {
    // Without owners, the account's own snapshots (not every public one, as EC2 would list).
    snapshots = [...region.snapshots.values()].filter((s) => owners.length > 0 || s.ownerId === ACCOUNT_ID);
  }
  if (owners.length) snapshots = snapshots.filter((s) => owners.some((o) => (o === 'self' ? s.ownerId === ACCOUNT_ID : o === s.ownerId)));
  snapshots = applyFilters(snapshots, params, SNAPSHOT_FILTERS);
  const { page, nextToken } = paginate(snapshots, params, 'DescribeSnapshots', { min: 5, max: 1000 });
  return { snapshotSet: page.map(snapshotXml), nextToken };
};

const deleteSnapshotOp: Handler = async (cloud, region, params) => {
  const snapshotId = params.required('SnapshotId');
  checkIdFormat(snapshotId, 'snap', 'InvalidSnapshotID.Malformed');
  const snapshot = region.snapshots.get(snapshotId);
  if (!snapshot) throw notFound('snapshot', [snapshotId]);
  if (snapshot.ownerId !== ACCOUNT_ID) throw new Ec2Error('UnauthorizedOperation', `You are not authorized to delete ${snapshotId}.`, 403);
  const user = snapshotInUse(region, snapshotId);
  if (user) throw new Ec2Error('InvalidSnapshot.InUse', `The snapshot ${snapshotId} is currently in use by ${user.id}`);
  await deleteSnapshot(cloud, region, snapshot);
  return { return: true };
};

export const imageOperations: Record<string, Handler> = {
  CreateImage: createImage,
  DescribeImages: describeImages,
  DeregisterImage: deregisterImage,
  CopyImage: copyImage,
  DescribeSnapshots: describeSnapshots,
  DeleteSnapshot: deleteSnapshotOp,
};
