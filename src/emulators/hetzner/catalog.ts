/**
 * What the emulated project offers: locations, datacenters, server types and the system image, as
 * the real API lists them (https://docs.hetzner.cloud/#locations, #server-types, #images). Only
 * debian-12 is offered, because it is the only one backed by a real root file system; only x86
 * types, because the machines are x86 containers.
 */

export interface LocationSpec {
  id: number;
  name: string;
  description: string;
  country: string;
  city: string;
  latitude: number;
  longitude: number;
  network_zone: string;
}

export const LOCATIONS: LocationSpec[] = [
  { id: 1, name: 'fsn1', description: 'Falkenstein DC Park 1', country: 'DE', city: 'Falkenstein', latitude: 50.47612, longitude: 12.370071, network_zone: 'eu-central' },
  { id: 2, name: 'nbg1', description: 'Nuremberg DC Park 1', country: 'DE', city: 'Nuremberg', latitude: 49.452102, longitude: 11.076665, network_zone: 'eu-central' },
  { id: 3, name: 'hel1', description: 'Helsinki DC Park 1', country: 'FI', city: 'Helsinki', latitude: 60.169855, longitude: 24.938379, network_zone: 'eu-central' },
  { id: 4, name: 'ash', description: 'Ashburn, VA', country: 'US', city: 'Ashburn, VA', latitude: 39.045821, longitude: -77.487073, network_zone: 'us-east' },
  { id: 5, name: 'hil', description: 'Hillsboro, OR', country: 'US', city: 'Hillsboro, OR', latitude: 45.54222, longitude: -122.951924, network_zone: 'us-west' },
  { id: 6, name: 'sin', description: 'Singapore', country: 'SG', city: 'Singapore', latitude: 1.283333, longitude: 103.833333, network_zone: 'ap-southeast' },
];

/** One datacenter per location (the API still reports a server's datacenter). */
export const DATACENTERS = [
  { id: 4, name: 'fsn1-dc14', description: 'Falkenstein 1 virtual DC 14', location: 'fsn1' },
  { id: 2, name: 'nbg1-dc3', description: 'Nuremberg 1 virtual DC 3', location: 'nbg1' },
  { id: 3, name: 'hel1-dc2', description: 'Helsinki 1 virtual DC 2', location: 'hel1' },
  { id: 5, name: 'ash-dc1', description: 'Ashburn virtual DC 1', location: 'ash' },
  { id: 6, name: 'hil-dc1', description: 'Hillsboro virtual DC 1', location: 'hil' },
  { id: 7, name: 'sin-dc1', description: 'Singapore virtual DC 1', location: 'sin' },
];

export interface ServerTypeSpec {
  id: number;
  name: string;
  description: string;
  cores: number;
  /** GB */
  memory: number;
  /** GB */
  disk: number;
  cpu_type: 'shared' | 'dedicated';
  category: string;
  /** Net EUR per hour and per month. */
  hourly: string;
  monthly: string;
}

export const SERVER_TYPES: ServerTypeSpec[] = [
  { id: 104, name: 'cx22', description: 'CX22', cores: 2, memory: 4, disk: 40, cpu_type: 'shared', category: 'cost_optimized', hourly: '0.0060000000', monthly: '3.7900000000' },
  { id: 105, name: 'cx32', description: 'CX32', cores: 4, memory: 8, disk: 80, cpu_type: 'shared', category: 'cost_optimized', hourly: '0.0110000000', monthly: '6.8000000000' },
  { id: 22, name: 'cpx11', description: 'CPX 11', cores: 2, memory: 2, disk: 40, cpu_type: 'shared', category: 'regular_purpose', hourly: '0.0076000000', monthly: '4.7500000000' },
  { id: 23, name: 'cpx21', description: 'CPX 21', cores: 3, memory: 4, disk: 80, cpu_type: 'shared', category: 'regular_purpose', hourly: '0.0138000000', monthly: '8.5900000000' },
  { id: 96, name: 'ccx13', description: 'CCX13 Dedicated CPU', cores: 2, memory: 8, disk: 80, cpu_type: 'dedicated', category: 'general_purpose', hourly: '0.0238000000', monthly: '14.8600000000' },
];

export const SYSTEM_IMAGE = {
  id: 114690387,
  name: 'debian-12',
  description: 'Debian 12',
  os_flavor: 'debian',
  os_version: '12',
  disk_size: 5,
  created: '2023-06-13T06:00:02Z',
};

export interface LoadBalancerTypeSpec {
  id: number;
  name: string;
  description: string;
  max_connections: number;
  max_services: number;
  max_targets: number;
  max_assigned_certificates: number;
  hourly: string;
  monthly: string;
}

/** https://docs.hetzner.cloud/#load-balancer-types */
export const LOAD_BALANCER_TYPES: LoadBalancerTypeSpec[] = [
  { id: 1, name: 'lb11', description: 'LB11', max_connections: 10000, max_services: 5, max_targets: 25, max_assigned_certificates: 10, hourly: '0.0088000000', monthly: '5.3900000000' },
  { id: 2, name: 'lb21', description: 'LB21', max_connections: 20000, max_services: 15, max_targets: 75, max_assigned_certificates: 25, hourly: '0.0264000000', monthly: '16.4000000000' },
  { id: 3, name: 'lb31', description: 'LB31', max_connections: 40000, max_services: 30, max_targets: 150, max_assigned_certificates: 50, hourly: '0.0528000000', monthly: '32.9000000000' },
];
