/**
 * EBS volumes: each instance's root volume, made from its AMI's snapshot by RunInstances,
 * attached as /dev/xvda until the instance terminates (DeleteOnTermination, as EC2's default for
 * root volumes), and DescribeVolumes. CreateImage snapshots name this volume as their VolumeId.
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeVolumes.html
 */
import type { Handler } from './cloud.js';
import { checkIdFormat, Ec2Error, notFound } from './errors.js';
import { applyFilters, newId, paginate, tagsXml, type FilterFields, type Instance, type RegionState, type Tags, type Volume } from './resources.js';
import type { XmlObject } from './xml.js';

export const ROOT_DEVICE = '/dev/xvda';

/** The root volume of a new instance, from the AMI's snapshot. */
export function createRootVolume(region: RegionState, instance: Omit<Instance, 'volumeId'>, snapshotId: string, tags: Tags): Volume {
  const snapshot = region.snapshots.get(snapshotId);
  const volume: Volume = {
    id: newId('vol'),
    size: snapshot?.volumeSize ?? 8,
    snapshotId,
    availabilityZone: instance.availabilityZone,
    createTime: instance.launchTime,
    state: 'in-use',
    attachment: { instanceId: instance.id, device: ROOT_DEVICE, state: 'attached', attachTime: instance.launchTime, deleteOnTermination: true },
    tags,
  };
  region.volumes.set(volume.id, volume);
  return volume;
}

/** The instance is terminated: its root volume goes with it. */
export function deleteRootVolume(region: RegionState, instance: Instance): void {
  const volume = region.volumes.get(instance.volumeId);
  if (!volume) return;
  if (volume.attachment?.deleteOnTermination) {
    volume.state = 'deleted';
    region.volumes.delete(volume.id);
  } else {
    volume.attachment = undefined;
    volume.state = 'available';
  }
}

function volumeXml(region: RegionState, v: Volume): XmlObject {
  const zoneId = [...region.subnets.values()].find((s) => s.availabilityZone === v.availabilityZone)?.zoneId;
  return {
    volumeId: v.id,
    size: v.size,
    snapshotId: v.snapshotId,
    availabilityZone: v.availabilityZone,
    availabilityZoneId: zoneId,
    status: v.state,
    createTime: v.createTime,
    attachmentSet: v.attachment
      ? [
          {
            volumeId: v.id,
            instanceId: v.attachment.instanceId,
            device: v.attachment.device,
            status: v.attachment.state,
            attachTime: v.attachment.attachTime,
            deleteOnTermination: v.attachment.deleteOnTermination,
          },
        ]
      : [],
    encrypted: false,
    volumeType: 'gp3',
    iops: 3000,
    throughput: 125,
    multiAttachEnabled: false,
    tagSet: tagsXml(v.tags),
  };
}

const VOLUME_FILTERS: FilterFields<Volume> = {
  'volume-id': (v) => v.id,
  status: (v) => v.state,
  size: (v) => String(v.size),
  'snapshot-id': (v) => v.snapshotId,
  'availability-zone': (v) => v.availabilityZone,
  'create-time': (v) => v.createTime.toISOString(),
  'volume-type': () => 'gp3',
  encrypted: () => 'false',
  'multi-attach-enabled': () => 'false',
  'attachment.instance-id': (v) => v.attachment?.instanceId,
  'attachment.device': (v) => v.attachment?.device,
  'attachment.status': (v) => v.attachment?.state,
  'attachment.attach-time': (v) => v.attachment?.attachTime.toISOString(),
  'attachment.delete-on-termination': (v) => (v.attachment ? String(v.attachment.deleteOnTermination) : undefined),
};

const describeVolumes: Handler = (_cloud, region, params) => {
  const ids = params.strings('VolumeId');
  if (ids.length && params.has('MaxResults')) {
    throw new Ec2Error('InvalidParameterCombination', 'The parameter volumeSet cannot be used with the parameter maxResults');
  }
  let volumes: Volume[];
  if (ids.length) {
    for (const id of ids) checkIdFormat(id, 'vol', 'InvalidVolumeID.Malformed');
    const missing = ids.filter((id) => !region.volumes.has(id));
    if (missing.length) throw notFound('volume', missing);
    volumes = ids.map((id) => region.volumes.get(id)!);
  } else {
    volumes = [...region.volumes.values()];
  }
  volumes = applyFilters(volumes, params, VOLUME_FILTERS);
  const { page, nextToken } = paginate(volumes, params, 'DescribeVolumes', { min: 5, max: 500, capped: true });
  return { volumeSet: page.map((v) => volumeXml(region, v)), nextToken };
};

export const volumeOperations: Record<string, Handler> = {
  DescribeVolumes: describeVolumes,
};
