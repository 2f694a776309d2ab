/** The emulated project's resources, as the emulator keeps them (views.ts renders them as the API does). */
import type { ServerTypeSpec, LocationSpec } from './catalog.js';
import type { Labels } from './labels.js';

export type ServerStatus = 'initializing' | 'starting' | 'running' | 'stopping' | 'off' | 'deleting';

export interface Server {
  id: number;
  name: string;
  status: ServerStatus;
  created: string;
  serverType: ServerTypeSpec;
  location: LocationSpec;
  imageId: number;
  labels: Labels;
  /** True while an action runs on it: another one is then 423 locked. */
  locked: boolean;
  machineId: string;
  ip: string;
  /** A guest shutdown under way (ACPI sent): later actions wait for it. */
  stopping?: Promise<void>;
  deleted: boolean;
}

export interface Image {
  id: number;
  type: 'system' | 'snapshot';
  status: 'creating' | 'available';
  /** System images have a name; snapshots do not. */
  name: string | null;
  description: string;
  /** GB the snapshot takes (null for system images and while creating). */
  imageSize: number | null;
  diskSize: number;
  created: string;
  createdFrom: { id: number; name: string } | null;
  osFlavor: string;
  osVersion: string | null;
  labels: Labels;
  /** Machine layer it boots from. */
  layer: string;
}

export interface Action {
  id: number;
  command: string;
  status: 'running' | 'success' | 'error';
  progress: number;
  started: string;
  finished: string | null;
  error: { code: string; message: string } | null;
  resources: { id: number; type: 'server' | 'image' | 'load_balancer' | 'floating_ip' }[];
}

export interface SshKey {
  id: number;
  name: string;
  publicKey: string;
  fingerprint: string;
  labels: Labels;
  created: string;
}
