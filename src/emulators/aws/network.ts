/**
 * The network side: security groups (rules are recorded and listed, not enforced: every machine's
 * sshd is reachable), the default VPC and its subnets, regions and zones.
 */
import { ACCOUNT_ID, REGIONS, type Handler } from './cloud.js';
import { checkIdFormat, Ec2Error, notFound } from './errors.js';
import type { Params } from './query.js';
import {
  applyFilters,
  newId,
  paginate,
  tagsXml,
  tagSpecifications,
  type FilterFields,
  type IpPermission,
  type RegionState,
  type SecurityGroup,
  type Subnet,
  type Tags,
  type Vpc,
} from './resources.js';
import type { XmlObject } from './xml.js';

function permissionXml(p: IpPermission): XmlObject {
  return {
    ipProtocol: p.protocol,
    fromPort: p.fromPort,
    toPort: p.toPort,
    groups: [],
    ipRanges: p.cidrs.map((c) => ({ cidrIp: c.cidr, description: c.description })),
    ipv6Ranges: [],
    prefixListIds: [],
  };
}

function groupXml(region: RegionState, g: SecurityGroup): XmlObject {
  return {
    ownerId: ACCOUNT_ID,
    groupId: g.id,
    groupName: g.name,
    groupDescription: g.description,
    ipPermissions: g.ingress.map(permissionXml),
    ipPermissionsEgress: [permissionXml({ protocol: '-1', cidrs: [{ cidr: '0.0.0.0/0' }] })],
    vpcId: g.vpcId,
    securityGroupArn: `arn:aws:ec2:${region.name}:${ACCOUNT_ID}:security-group/${g.id}`,
    tagSet: tagsXml(g.tags),
  };
}

const GROUP_FILTERS: FilterFields<SecurityGroup> = {
  'group-id': (g) => g.id,
  'group-name': (g) => g.name,
  description: (g) => g.description,
  'vpc-id': (g) => g.vpcId,
  'owner-id': () => ACCOUNT_ID,
  'ip-permission.from-port': (g) => g.ingress.map((p) => (p.fromPort === undefined ? undefined : String(p.fromPort))),
  'ip-permission.to-port': (g) => g.ingress.map((p) => (p.toPort === undefined ? undefined : String(p.toPort))),
  'ip-permission.protocol': (g) => g.ingress.map((p) => p.protocol),
  'ip-permission.cidr': (g) => g.ingress.flatMap((p) => p.cidrs.map((c) => c.cidr)),
};

function defaultVpc(region: RegionState): Vpc {
  return [...region.vpcs.values()].find((v) => v.isDefault)!;
}

/** GroupId, or GroupName in the default VPC. */
function findGroup(region: RegionState, params: Params): SecurityGroup {
  const id = params.str('GroupId');
  if (id) {
    checkIdFormat(id, 'sg', 'InvalidGroupId.Malformed');
    const group = region.groups.get(id);
    if (!group) throw notFound('group', [id]);
    return group;
  }
  const name = params.str('GroupName');
  if (!name) throw new Ec2Error('MissingParameter', 'The request must contain the parameter GroupId or GroupName');
  const vpc = defaultVpc(region);
  const group = [...region.groups.values()].find((g) => g.name === name && g.vpcId === vpc.id);
  if (!group) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${name}' does not exist in default VPC '${vpc.id}'`);
  return group;
}

const createSecurityGroup: Handler = (_cloud, region, params) => {
  const name = params.required('GroupName');
  const description = params.required('GroupDescription');
  if (name.length > 255 || name.toLowerCase().startsWith('sg-')) throw new Ec2Error('InvalidParameterValue', `Invalid group name '${name}'`);
  // An empty VpcId (Packer sends one when no vpc_id is set) means the default VPC, as in EC2.
  const vpcId = params.str('VpcId') || defaultVpc(region).id;
  if (!region.vpcs.has(vpcId)) throw notFound('vpc', [vpcId]);
  if ([...region.groups.values()].some((g) => g.name === name && g.vpcId === vpcId)) {
    throw new Ec2Error('InvalidGroup.Duplicate', `The security group '${name}' already exists for VPC '${vpcId}'`);
  }
  const group: SecurityGroup = { id: newId('sg'), name, description, vpcId, ingress: [], tags: tagSpecifications(params, 'security-group', ['security-group']) };
  region.groups.set(group.id, group);
  return { groupId: group.id, tagSet: tagsXml(group.tags), securityGroupArn: `arn:aws:ec2:${region.name}:${ACCOUNT_ID}:security-group/${group.id}` };
};

function readPermissions(params: Params): IpPermission[] {
  const listed = params.list('IpPermissions');
  const read = (p: Params): IpPermission => {
    const protocol = p.required('IpProtocol').toLowerCase();
    const cidrs = p.list('IpRanges').map((r) => ({ cidr: r.required('CidrIp'), description: r.str('Description') }));
    if (p.str('CidrIp')) cidrs.push({ cidr: p.str('CidrIp')!, description: undefined });
    const all = protocol === '-1' || protocol === 'all';
    return { protocol: all ? '-1' : protocol, fromPort: all ? undefined : p.int('FromPort'), toPort: all ? undefined : p.int('ToPort'), cidrs };
  };
  const permissions = listed.length ? listed.map(read) : [read(params)];
  for (const p of permissions) {
    if (!['tcp', 'udp', 'icmp', '-1', '6', '17', '1'].includes(p.protocol)) throw new Ec2Error('InvalidParameterValue', `Invalid value '${p.protocol}' for IP protocol. Unknown protocol.`);
    for (const c of p.cidrs) if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(c.cidr)) throw new Ec2Error('InvalidParameterValue', `CIDR block ${c.cidr} is malformed`);
  }
  return permissions;
}

const authorizeIngress: Handler = (_cloud, region, params) => {
  const group = findGroup(region, params);
  const rules: XmlObject[] = [];
  const permissions = readPermissions(params);
  for (const p of permissions) {
    for (const c of p.cidrs) {
      const same = group.ingress.find((q) => q.protocol === p.protocol && q.fromPort === p.fromPort && q.toPort === p.toPort && q.cidrs.some((d) => d.cidr === c.cidr));
      if (same) {
        throw new Ec2Error(
          'InvalidPermission.Duplicate',
          `the specified rule "peer: ${c.cidr}, ${p.protocol.toUpperCase()}, from port: ${p.fromPort}, to port: ${p.toPort}, ALLOW" already exists`,
        );
      }
    }
  }
  for (const p of permissions) {
    group.ingress.push(p);
    for (const c of p.cidrs) {
      rules.push({
        securityGroupRuleId: newId('sgr'),
        groupId: group.id,
        groupOwnerId: ACCOUNT_ID,
        isEgress: false,
        ipProtocol: p.protocol,
        fromPort: p.fromPort ?? -1,
        toPort: p.toPort ?? -1,
        cidrIpv4: c.cidr,
        description: c.description,
      });
    }
  }
  return { return: true, securityGroupRuleSet: rules };
};

const describeSecurityGroups: Handler = (_cloud, region, params) => {
  let groups = [...region.groups.values()];
  const ids = params.strings('GroupId');
  const names = params.strings('GroupName');
  if (ids.length) {
    const missing = ids.filter((id) => !region.groups.has(id));
    if (missing.length) throw notFound('group', missing);
    groups = groups.filter((g) => ids.includes(g.id));
  }
  if (names.length) {
    const vpc = defaultVpc(region);
    const missing = names.filter((n) => !groups.some((g) => g.name === n && g.vpcId === vpc.id));
    if (missing.length) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${missing.join(', ')}' does not exist in default VPC '${vpc.id}'`);
    groups = groups.filter((g) => names.includes(g.name) && g.vpcId === vpc.id);
  }
  groups = applyFilters(groups, params, GROUP_FILTERS);
  const { page, nextToken } = paginate(groups, params, 'DescribeSecurityGroups');
  return { securityGroupInfo: page.map((g) => groupXml(region, g)), nextToken };
};

const deleteSecurityGroup: Handler = (_cloud, region, params) => {
  const group = findGroup(region, params);
  if (group.name === 'default') {
    throw new Ec2Error('CannotDelete', `the specified group: "${group.id}" name: "default" cannot be deleted by a user`);
  }
  // Instances shutting down still hold their groups, as in EC2.
  const user = [...region.instances.values()].find((i) => i.state !== 'terminated' && i.groupIds.includes(group.id));
  if (user) throw new Ec2Error('DependencyViolation', `resource ${group.id} has a dependent object`);
  region.groups.delete(group.id);
  return { return: true, groupId: group.id };
};

const describeVpcs: Handler = (_cloud, region, params) => {
  let vpcs = [...region.vpcs.values()];
  const ids = params.strings('VpcId');
  if (ids.length) {
    const missing = ids.filter((id) => !region.vpcs.has(id));
    if (missing.length) throw notFound('vpc', missing);
    vpcs = vpcs.filter((v) => ids.includes(v.id));
  }
  vpcs = applyFilters(vpcs, params, {
    'vpc-id': (v) => v.id,
    'is-default': (v) => String(v.isDefault),
    state: () => 'available',
    'cidr-block': (v) => v.cidr,
    cidr: (v) => v.cidr,
    'owner-id': () => ACCOUNT_ID,
  });
  const { page, nextToken } = paginate(vpcs, params, 'DescribeVpcs');
  return {
    vpcSet: page.map((v) => ({
      vpcId: v.id,
      state: 'available',
      cidrBlock: v.cidr,
      dhcpOptionsId: 'dopt-00000000',
      instanceTenancy: 'default',
      isDefault: v.isDefault,
      ownerId: ACCOUNT_ID,
      tagSet: tagsXml(v.tags),
    })),
    nextToken,
  };
};

const SUBNET_FILTERS: FilterFields<Subnet> = {
  'subnet-id': (s) => s.id,
  'vpc-id': (s) => s.vpcId,
  'availability-zone': (s) => s.availabilityZone,
  'availability-zone-id': (s) => s.zoneId,
  'default-for-az': (s) => String(s.isDefault),
  'cidr-block': (s) => s.cidr,
  state: () => 'available',
  'owner-id': () => ACCOUNT_ID,
};

const describeSubnets: Handler = (_cloud, region, params) => {
  let subnets = [...region.subnets.values()];
  const ids = params.strings('SubnetId');
  if (ids.length) {
    const missing = ids.filter((id) => !region.subnets.has(id));
    if (missing.length) throw notFound('subnet', missing);
    subnets = subnets.filter((s) => ids.includes(s.id));
  }
  subnets = applyFilters(subnets, params, SUBNET_FILTERS);
  const { page, nextToken } = paginate(subnets, params, 'DescribeSubnets');
  return {
    subnetSet: page.map((s) => ({
      subnetId: s.id,
      subnetArn: `arn:aws:ec2:${region.name}:${ACCOUNT_ID}:subnet/${s.id}`,
      state: 'available',
      vpcId: s.vpcId,
      cidrBlock: s.cidr,
      availableIpAddressCount: 4091,
      availabilityZone: s.availabilityZone,
      availabilityZoneId: s.zoneId,
      defaultForAz: s.isDefault,
      mapPublicIpOnLaunch: true,
      ownerId: ACCOUNT_ID,
      assignIpv6AddressOnCreation: false,
      tagSet: tagsXml(s.tags),
    })),
    nextToken,
  };
};

const describeRegions: Handler = (_cloud, _region, params) => {
  const names = params.strings('RegionName');
  for (const name of names) if (!REGIONS.includes(name)) throw new Ec2Error('InvalidParameterValue', `Invalid region: ${name}`);
  let regions = REGIONS.filter((r) => names.length === 0 || names.includes(r)).map((name) => ({ name }));
  regions = applyFilters<{ name: string; tags?: Tags }>(regions, params, {
    'region-name': (r) => r.name,
    endpoint: (r) => `ec2.${r.name}.amazonaws.com`,
    'opt-in-status': () => 'opt-in-not-required',
  });
  return { regionInfo: regions.map((r) => ({ regionName: r.name, regionEndpoint: `ec2.${r.name}.amazonaws.com`, optInStatus: 'opt-in-not-required' })) };
};

const describeAvailabilityZones: Handler = (_cloud, region, params) => {
  let zones = [...region.subnets.values()].filter((s) => s.isDefault).map((s) => ({ name: s.availabilityZone, id: s.zoneId }));
  const names = params.strings('ZoneName');
  const ids = params.strings('ZoneId');
  if (names.length) zones = zones.filter((z) => names.includes(z.name));
  if (ids.length) zones = zones.filter((z) => ids.includes(z.id));
  zones = applyFilters<{ name: string; id: string; tags?: Tags }>(zones, params, {
    'zone-name': (z) => z.name,
    'zone-id': (z) => z.id,
    'region-name': () => region.name,
    state: () => 'available',
    'zone-type': () => 'availability-zone',
  });
  return {
    availabilityZoneInfo: zones.map((z) => ({
      optInStatus: 'opt-in-not-required',
      messageSet: [],
      regionName: region.name,
      zoneName: z.name,
      zoneId: z.id,
      groupName: region.name,
      networkBorderGroup: region.name,
      zoneType: 'availability-zone',
      zoneState: 'available',
    })),
  };
};

export const networkOperations: Record<string, Handler> = {
  CreateSecurityGroup: createSecurityGroup,
  AuthorizeSecurityGroupIngress: authorizeIngress,
  DescribeSecurityGroups: describeSecurityGroups,
  DeleteSecurityGroup: deleteSecurityGroup,
  DescribeVpcs: describeVpcs,
  DescribeSubnets: describeSubnets,
  DescribeRegions: describeRegions,
  DescribeAvailabilityZones: describeAvailabilityZones,
};
