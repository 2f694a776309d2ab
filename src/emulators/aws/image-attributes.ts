/**
 * DescribeImageAttribute and ModifyImageAttribute on the account's own AMIs: the description,
 * launch permissions (group `all` makes an AMI public; account ids share it, and DescribeImages
 * `ExecutableBy` sees the share), IMDS support; the others are read-only here, as most are in EC2.
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyImageAttribute.html
 */
import type { Handler } from './cloud.js';
import { Ec2Error } from './errors.js';
import { imageXml, ownImage } from './images.js';
import type { Params } from './query.js';
import type { Image, RegionState } from './resources.js';
import type { XmlObject } from './xml.js';

function launchPermissionsXml(image: Image): XmlObject[] {
  return [...(image.public ? [{ group: 'all' }] : []), ...image.launchUserIds.map((userId) => ({ userId }))];
}

function attributeXml(region: RegionState, image: Image, attribute: string): XmlObject | undefined {
  const value = (v: string | undefined): XmlObject => ({ value: v });
  const attributes: Record<string, () => XmlObject> = {
    description: () => ({ description: value(image.description) }),
    kernel: () => ({ kernel: {} }),
    ramdisk: () => ({ ramdisk: {} }),
    launchPermission: () => ({ launchPermission: launchPermissionsXml(image) }),
    productCodes: () => ({ productCodes: [] }),
    blockDeviceMapping: () => ({ blockDeviceMapping: imageXml(region, image).blockDeviceMapping }),
    sriovNetSupport: () => ({ sriovNetSupport: value('simple') }),
    bootMode: () => ({ bootMode: value('uefi-preferred') }),
    tpmSupport: () => ({ tpmSupport: {} }),
    uefiData: () => ({ uefiData: {} }),
    lastLaunchedTime: () => ({ lastLaunchedTime: image.lastLaunchedTime ? value(image.lastLaunchedTime.toISOString()) : {} }),
    imdsSupport: () => ({ imdsSupport: image.imdsSupport ? value(image.imdsSupport) : {} }),
    deregistrationProtection: () => ({ deregistrationProtection: value('disabled') }),
  };
  return Object.hasOwn(attributes, attribute) ? attributes[attribute]() : undefined;
}

const describeImageAttribute: Handler = (_cloud, region, params) => {
  const attribute = params.required('Attribute');
  const image = ownImage(region, params);
  const answer = attributeXml(region, image, attribute);
  if (!answer) throw new Ec2Error('InvalidParameterValue', `Value (${attribute}) for parameter attribute is invalid. Unknown attribute.`);
  return { imageId: image.id, ...answer };
};

interface PermissionChange {
  add: boolean;
  userIds: string[];
  groups: string[];
}

/** `LaunchPermission.Add.N.UserId`/`.Group` (and Remove), or the older `OperationType` with `UserId.N`/`UserGroup.N`. */
function permissionChanges(params: Params): PermissionChange[] {
  const changes: PermissionChange[] = [];
  const structured = params.sub('LaunchPermission');
  for (const [key, add] of [['Add', true], ['Remove', false]] as const) {
    const items = structured?.list(key) ?? [];
    if (items.length) changes.push({ add, userIds: items.map((p) => p.str('UserId')).filter((v): v is string => !!v), groups: items.map((p) => p.str('Group')).filter((v): v is string => !!v) });
  }
  const operation = params.str('OperationType');
  if (operation) {
    if (operation !== 'add' && operation !== 'remove') throw new Ec2Error('InvalidParameterValue', `Invalid value '${operation}' for OperationType`);
    changes.push({ add: operation === 'add', userIds: params.strings('UserId'), groups: params.strings('UserGroup') });
  }
  for (const change of changes) {
    for (const id of change.userIds) if (!/^\d{12}$/.test(id)) throw new Ec2Error('InvalidAMIAttributeItemValue', `Invalid attribute item value "${id}" for userId item type.`);
    for (const group of change.groups) if (group !== 'all') throw new Ec2Error('InvalidAMIAttributeItemValue', `Invalid attribute item value "${group}" for group item type.`);
  }
  return changes;
}

const modifyImageAttribute: Handler = (_cloud, region, params) => {
  const image = ownImage(region, params);
  const attribute = params.str('Attribute');
  const description = params.sub('Description')?.str('Value') ?? (attribute === 'description' ? params.str('Value') : undefined);
  const imds = params.sub('ImdsSupport')?.str('Value') ?? (attribute === 'imdsSupport' ? params.str('Value') : undefined);
  const changes = permissionChanges(params);
  if (attribute && !['description', 'launchPermission', 'imdsSupport'].includes(attribute)) {
    throw new Ec2Error('InvalidParameterValue', `Value (${attribute}) for parameter attribute is invalid. Only description, launchPermission and imdsSupport can be modified.`);
  }
  if (description === undefined && imds === undefined && changes.length === 0) {
    throw new Ec2Error('MissingParameter', 'The request must contain the parameter Attribute, Description, LaunchPermission or ImdsSupport');
  }
  if (imds !== undefined && imds !== 'v2.0') throw new Ec2Error('InvalidParameterValue', `Invalid value '${imds}' for ImdsSupport; the only value is v2.0`);
  if (description !== undefined) image.description = description;
  if (imds !== undefined) image.imdsSupport = imds;
  for (const change of changes) {
    if (change.groups.includes('all')) image.public = change.add;
    for (const id of change.userIds) {
      image.launchUserIds = image.launchUserIds.filter((u) => u !== id);
      if (change.add) image.launchUserIds.push(id);
    }
  }
  return { return: true };
};

export const imageAttributeOperations: Record<string, Handler> = {
  DescribeImageAttribute: describeImageAttribute,
  ModifyImageAttribute: modifyImageAttribute,
};
