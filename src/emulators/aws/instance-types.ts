/**
 * The instance types the emulator knows, with what EC2 publishes of them (vCPUs, memory, the
 * architectures they run), and DescribeInstanceTypes. RunInstances refuses a type not in this
 * table, and an AMI whose architecture the type does not run, as EC2 does.
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypes.html
 * https://docs.aws.amazon.com/ec2/latest/instancetypes/gp.html (sizes and memory)
 */
import type { Handler } from './cloud.js';
import { Ec2Error } from './errors.js';
import { applyFilters, paginate, type FilterFields } from './resources.js';
import type { XmlObject } from './xml.js';

export type Architecture = 'x86_64' | 'arm64' | 'i386';

export interface InstanceType {
  name: string;
  architectures: Architecture[];
  vcpus: number;
  memoryMiB: number;
  hypervisor: 'nitro' | 'xen';
  manufacturer: 'Intel' | 'AMD' | 'AWS';
  burstable: boolean;
  currentGeneration: boolean;
  freeTier: boolean;
  /** Types have no tags (filters `tag:...` match nothing). */
  tags?: undefined;
}

const GiB = 1024;
/** size -> [vCPUs, MiB] of the burstable families (t3, t3a, t4g; t2 has 1 vCPU up to small). */
const BURSTABLE_SIZES: Record<string, [number, number]> = {
  nano: [2, 512],
  micro: [2, GiB],
  small: [2, 2 * GiB],
  medium: [2, 4 * GiB],
  large: [2, 8 * GiB],
  xlarge: [4, 16 * GiB],
  '2xlarge': [8, 32 * GiB],
};
const STANDARD_SIZES: Record<string, number> = { large: 2, xlarge: 4, '2xlarge': 8, '4xlarge': 16, '8xlarge': 32 };

interface Family {
  family: string;
  architectures: Architecture[];
  manufacturer: InstanceType['manufacturer'];
  /** GiB per vCPU for the standard sizes; the burstable table otherwise. */
  memoryPerVcpu?: number;
  /** Sizes when not STANDARD_SIZES (c5 goes from 4xlarge to 9xlarge). */
  sizes?: Record<string, number>;
  hypervisor?: InstanceType['hypervisor'];
}

const FAMILIES: Family[] = [
  { family: 't2', architectures: ['x86_64', 'i386'], manufacturer: 'Intel', hypervisor: 'xen' },
  { family: 't3', architectures: ['x86_64'], manufacturer: 'Intel' },
  { family: 't3a', architectures: ['x86_64'], manufacturer: 'AMD' },
  { family: 't4g', architectures: ['arm64'], manufacturer: 'AWS' },
  { family: 'm5', architectures: ['x86_64'], manufacturer: 'Intel', memoryPerVcpu: 4 },
  { family: 'm6i', architectures: ['x86_64'], manufacturer: 'Intel', memoryPerVcpu: 4 },
  { family: 'm6a', architectures: ['x86_64'], manufacturer: 'AMD', memoryPerVcpu: 4 },
  { family: 'm6g', architectures: ['arm64'], manufacturer: 'AWS', memoryPerVcpu: 4 },
  { family: 'm7g', architectures: ['arm64'], manufacturer: 'AWS', memoryPerVcpu: 4 },
  { family: 'c5', architectures: ['x86_64'], manufacturer: 'Intel', memoryPerVcpu: 2, sizes: { large: 2, xlarge: 4, '2xlarge': 8, '4xlarge': 16, '9xlarge': 36 } },
  { family: 'c6i', architectures: ['x86_64'], manufacturer: 'Intel', memoryPerVcpu: 2 },
  { family: 'c6g', architectures: ['arm64'], manufacturer: 'AWS', memoryPerVcpu: 2 },
  { family: 'c7g', architectures: ['arm64'], manufacturer: 'AWS', memoryPerVcpu: 2 },
  { family: 'r5', architectures: ['x86_64'], manufacturer: 'Intel', memoryPerVcpu: 8 },
  { family: 'r6g', architectures: ['arm64'], manufacturer: 'AWS', memoryPerVcpu: 8 },
];

function buildTable(): Map<string, InstanceType> {
  const table = new Map<string, InstanceType>();
  const add = (t: InstanceType) => table.set(t.name, t);
  for (const f of FAMILIES) {
    const base = { architectures: f.architectures, hypervisor: f.hypervisor ?? 'nitro', manufacturer: f.manufacturer, currentGeneration: true } as const;
    if (f.memoryPerVcpu === undefined) {
      for (const [size, [vcpus, memoryMiB]] of Object.entries(BURSTABLE_SIZES)) {
        const oneVcpu = f.family === 't2' && ['nano', 'micro', 'small'].includes(size);
        add({ ...base, name: `${f.family}.${size}`, vcpus: oneVcpu ? 1 : vcpus, memoryMiB, burstable: true, freeTier: size === 'micro' && (f.family === 't2' || f.family === 't3') });
      }
    } else {
      for (const [size, vcpus] of Object.entries(f.sizes ?? STANDARD_SIZES)) {
        add({ ...base, name: `${f.family}.${size}`, vcpus, memoryMiB: vcpus * f.memoryPerVcpu * GiB, burstable: false, freeTier: false });
      }
    }
  }
  // EC2's default type when RunInstances names none (a previous generation).
  add({ name: 'm1.small', architectures: ['x86_64', 'i386'], vcpus: 1, memoryMiB: 1740, hypervisor: 'xen', manufacturer: 'Intel', burstable: false, currentGeneration: false, freeTier: false });
  return table;
}

export const INSTANCE_TYPES: ReadonlyMap<string, InstanceType> = buildTable();

/** The type's record; EC2's error for a name it does not offer. */
export function instanceType(name: string): InstanceType {
  const type = INSTANCE_TYPES.get(name);
  if (!type) throw new Ec2Error('InvalidParameterValue', `Invalid value '${name}' for InstanceType.`);
  return type;
}

/** EC2's refusal of an AMI the type cannot run. */
export function checkArchitecture(type: InstanceType, imageArchitecture: string): void {
  if (type.architectures.includes(imageArchitecture as Architecture)) return;
  throw new Ec2Error(
    'InvalidParameterValue',
    `The architecture '${type.architectures.join(',')}' of the specified instance type does not match the architecture '${imageArchitecture}' of the specified AMI. ` +
      `Specify an instance type and an AMI that have matching architectures, and try again. ` +
      `You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.`,
  );
}

function instanceTypeXml(t: InstanceType): XmlObject {
  const nitro = t.hypervisor === 'nitro';
  return {
    instanceType: t.name,
    currentGeneration: t.currentGeneration,
    freeTierEligible: t.freeTier,
    supportedUsageClasses: t.currentGeneration ? ['on-demand', 'spot'] : ['on-demand'],
    supportedRootDeviceTypes: ['ebs'],
    supportedVirtualizationTypes: ['hvm'],
    bareMetal: false,
    hypervisor: t.hypervisor,
    processorInfo: { supportedArchitectures: t.architectures, manufacturer: t.manufacturer },
    vCpuInfo: { defaultVCpus: t.vcpus, defaultCores: Math.max(1, t.vcpus / (t.manufacturer === 'AWS' || t.vcpus === 1 ? 1 : 2)), defaultThreadsPerCore: t.manufacturer === 'AWS' || t.vcpus === 1 ? 1 : 2 },
    memoryInfo: { sizeInMiB: t.memoryMiB },
    instanceStorageSupported: false,
    ebsInfo: { ebsOptimizedSupport: nitro ? 'default' : 'unsupported', encryptionSupport: 'supported', nvmeSupport: nitro ? 'required' : 'unsupported' },
    networkInfo: {
      networkPerformance: t.burstable ? 'Up to 5 Gigabit' : 'Up to 12.5 Gigabit',
      maximumNetworkInterfaces: Math.min(8, Math.max(2, t.vcpus)),
      ipv4AddressesPerInterface: Math.min(30, Math.max(2, t.vcpus * 3)),
      ipv6AddressesPerInterface: Math.min(30, Math.max(2, t.vcpus * 3)),
      ipv6Supported: nitro,
      enaSupport: nitro ? 'required' : 'unsupported',
      efaSupported: false,
    },
    placementGroupInfo: { supportedStrategies: ['partition', 'spread', ...(t.burstable ? [] : ['cluster'])] },
    hibernationSupported: t.architectures.includes('x86_64'),
    burstablePerformanceSupported: t.burstable,
    dedicatedHostsSupported: !t.burstable,
    autoRecoverySupported: true,
    supportedBootModes: t.architectures.includes('arm64') ? ['uefi'] : ['legacy-bios', 'uefi'],
  };
}

const TYPE_FILTERS: FilterFields<InstanceType> = {
  'instance-type': (t) => t.name,
  'processor-info.supported-architecture': (t) => t.architectures,
  'processor-info.manufacturer': (t) => t.manufacturer,
  'vcpu-info.default-vcpus': (t) => String(t.vcpus),
  'memory-info.size-in-mib': (t) => String(t.memoryMiB),
  'current-generation': (t) => String(t.currentGeneration),
  'free-tier-eligible': (t) => String(t.freeTier),
  'burstable-performance-supported': (t) => String(t.burstable),
  hypervisor: (t) => t.hypervisor,
  'bare-metal': () => 'false',
  'supported-root-device-type': () => 'ebs',
  'supported-virtualization-type': () => 'hvm',
  'supported-usage-class': (t) => (t.currentGeneration ? ['on-demand', 'spot'] : ['on-demand']),
};

const describeInstanceTypes: Handler = (_cloud, _region, params) => {
  const names = params.strings('InstanceType');
  const unknown = names.filter((n) => !INSTANCE_TYPES.has(n));
  if (unknown.length) throw new Ec2Error('InvalidInstanceType', `The following supplied instance types do not exist: [${unknown.join(', ')}]`);
  let types = names.length ? names.map((n) => INSTANCE_TYPES.get(n)!) : [...INSTANCE_TYPES.values()];
  types = applyFilters(types, params, TYPE_FILTERS);
  const { page, nextToken } = paginate(types, params, 'DescribeInstanceTypes', { min: 5, max: 100 });
  return { instanceTypeSet: page.map(instanceTypeXml), nextToken };
};

export const instanceTypeOperations: Record<string, Handler> = {
  DescribeInstanceTypes: describeInstanceTypes,
};
