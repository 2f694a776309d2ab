/**
 * What the fault matrix needs from a provider under test: the CLI's environment, an inventory of
 * everything that exists at the provider (read from the emulator's own state, or from disk and
 * /proc for local QEMU), and ways to switch faults on. One implementation per provider.
 */
import type { TempProject } from '../helpers/project.js';

export type ProviderName = 'digitalocean' | 'aws' | 'hetzner' | 'local';

export interface InventoryMachine {
  id: string;
  name: string;
  /** The environment label of a server; undefined for a builder. */
  env?: string;
  version?: string;
  running: boolean;
}

export interface Inventory {
  /** Every live machine: droplets, instances not terminated, QEMU processes and machine folders. */
  machines: InventoryMachine[];
  /**
   * What must never outlive a run, each described for the report: build keys and key pairs,
   * build security groups, snapshots or AMIs without a complete version, EBS snapshots of no AMI,
   * emulator machines of no droplet or instance, overlays of no machine, half-saved versions.
   */
  temporaries: string[];
}

export interface FaultTarget {
  readonly provider: ProviderName;
  readonly project: TempProject;
  /** Environment for the CLI (credentials, endpoints, state and data directories). */
  readonly env: NodeJS.ProcessEnv;
  /** The state directory (journals, locks, build logs). */
  readonly stateDir: string;
  /** Values that must never appear in any output or log (API tokens, secret keys, the canary). */
  readonly secrets: string[];
  /** Builds are slow (QEMU): the runner gives it longer timeouts. */
  readonly slow: boolean;
  inventory(): Promise<Inventory>;
  /**
   * Whether the provider still has work in flight (an action in progress, an AMI pending, an
   * instance changing state): what it will make of it is not in the inventory yet.
   */
  busy(): Promise<boolean>;
  /** Fault answers the emulator gave so far (0 where it cannot tell). */
  faultsFired(): number;
  clearFaults(): void;
  /** Cut the SSH sessions of the machine named `name` (the network side of "SSH dropped"). */
  dropSsh?(name: string): Promise<number>;
  close(): Promise<void>;
}
