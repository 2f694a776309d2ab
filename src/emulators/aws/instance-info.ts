/**
 * What clients read about instances besides DescribeInstances: DescribeInstanceStatus (the status
 * checks, `initializing` for `statusChecksMs` after an instance reaches running, then `ok`; the
 * AWS CLI's `wait instance-status-ok` polls it) and DescribeInstanceAttribute.
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceStatus.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceAttribute.html
 */
import { type Ec2Cloud, type Handler } from './cloud.js';
import { checkIdFormat, Ec2Error, notFound } from './errors.js';
import { blockDevicesXml, findInstances, stateXml, visibleInstances } from './instances.js';
import { applyFilters, paginate, STATE_CODES, type FilterFields, type Instance, type RegionState } from './resources.js';
import { ROOT_DEVICE } from './volumes.js';
import type { XmlObject } from './xml.js';

type SummaryStatus = 'ok' | 'initializing' | 'not-applicable';

/** Both checks (system and instance) pass together: nothing in the emulator impairs one alone. */
function checks(cloud: Ec2Cloud, i: Instance): { status: SummaryStatus; reachability?: 'passed' | 'initializing' } {
  if (i.state !== 'running' || i.runningSince === undefined) return { status: 'not-applicable' };
  if (Date.now() - i.runningSince < cloud.delays.statusChecksMs) return { status: 'initializing', reachability: 'initializing' };
  return { status: 'ok', reachability: 'passed' };
}

function summaryXml(c: ReturnType<typeof checks>): XmlObject {
  return { status: c.status, details: c.reachability ? [{ name: 'reachability', status: c.reachability }] : undefined };
}

function statusFilters(cloud: Ec2Cloud): FilterFields<Instance> {
  return {
    'availability-zone': (i) => i.availabilityZone,
    'instance-state-name': (i) => i.state,
    'instance-state-code': (i) => String(STATE_CODES[i.state]),
    'instance-status.status': (i) => checks(cloud, i).status,
    'instance-status.reachability': (i) => checks(cloud, i).reachability,
    'system-status.status': (i) => checks(cloud, i).status,
    'system-status.reachability': (i) => checks(cloud, i).reachability,
    'event.code': () => undefined,
    'event.description': () => undefined,
    'event.instance-event-id': () => undefined,
    'event.not-after': () => undefined,
    'event.not-before': () => undefined,
  };
}

function zoneId(region: RegionState, zone: string): string | undefined {
  return [...region.subnets.values()].find((s) => s.availabilityZone === zone)?.zoneId;
}

/** Without IncludeAllInstances only running instances are listed, as in EC2. */
const describeInstanceStatus: Handler = (cloud, region, params) => {
  const ids = params.strings('InstanceId');
  if (ids.length && params.has('MaxResults')) {
    throw new Ec2Error('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults');
  }
  let instances = ids.length ? findInstances(cloud, region, params) : visibleInstances(cloud, region);
  if (!(params.bool('IncludeAllInstances') ?? false)) instances = instances.filter((i) => i.state === 'running');
  instances = applyFilters(instances, params, statusFilters(cloud));
  const { page, nextToken } = paginate(instances, params, 'DescribeInstanceStatus', { min: 5, max: 1000 });
  return {
    instanceStatusSet: page.map((i) => {
      const c = checks(cloud, i);
      return {
        instanceId: i.id,
        availabilityZone: i.availabilityZone,
        availabilityZoneId: zoneId(region, i.availabilityZone),
        instanceState: stateXml(i.state),
        systemStatus: summaryXml(c),
        instanceStatus: summaryXml(c),
        attachedEbsStatus: summaryXml(c),
      };
    }),
    nextToken,
  };
};

const value = (v: string | undefined): XmlObject => ({ value: v });
const flag = (v: boolean): XmlObject => ({ value: v });

/** Each attribute as EC2 answers it; an attribute the instance has no value for is an empty element. */
function attributeXml(region: RegionState, i: Instance, attribute: string): XmlObject | undefined {
  const attributes: Record<string, () => XmlObject> = {
    instanceType: () => ({ instanceType: value(i.instanceType) }),
    kernel: () => ({ kernel: {} }),
    ramdisk: () => ({ ramdisk: {} }),
    userData: () => ({ userData: i.userData ? value(i.userData) : {} }),
    disableApiTermination: () => ({ disableApiTermination: flag(false) }),
    disableApiStop: () => ({ disableApiStop: flag(false) }),
    instanceInitiatedShutdownBehavior: () => ({ instanceInitiatedShutdownBehavior: value(i.shutdownBehavior) }),
    rootDeviceName: () => ({ rootDeviceName: value(ROOT_DEVICE) }),
    blockDeviceMapping: () => ({ blockDeviceMapping: blockDevicesXml(i) }),
    productCodes: () => ({ productCodes: [] }),
    sourceDestCheck: () => ({ sourceDestCheck: flag(true) }),
    groupSet: () => ({ groupSet: i.groupIds.map((id) => ({ groupId: id, groupName: region.groups.get(id)?.name })) }),
    ebsOptimized: () => ({ ebsOptimized: flag(false) }),
    sriovNetSupport: () => ({ sriovNetSupport: {} }),
    enaSupport: () => ({ enaSupport: flag(true) }),
    enclaveOptions: () => ({ enclaveOptions: { enabled: false } }),
  };
  return Object.hasOwn(attributes, attribute) ? attributes[attribute]() : undefined;
}

const describeInstanceAttribute: Handler = (cloud, region, params) => {
  const instanceId = params.required('InstanceId');
  const attribute = params.required('Attribute');
  checkIdFormat(instanceId, 'i', 'InvalidInstanceID.Malformed');
  visibleInstances(cloud, region);
  const instance = region.instances.get(instanceId);
  if (!instance) throw notFound('instance', [instanceId]);
  const answer = attributeXml(region, instance, attribute);
  if (!answer) throw new Ec2Error('InvalidParameterValue', `Value (${attribute}) for parameter attribute is invalid. Unknown attribute.`);
  return { instanceId, ...answer };
};

export const instanceInfoOperations: Record<string, Handler> = {
  DescribeInstanceStatus: describeInstanceStatus,
  DescribeInstanceAttribute: describeInstanceAttribute,
};
