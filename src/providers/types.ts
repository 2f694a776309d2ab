/**
 * The provider contract. pipeline/ and deploy/ see only this file; each provider is one folder
 * under src/providers/<name>/ whose index.ts default-exports a ProviderDefinition.
 *
 * The shape fits three very different back ends:
 *  - local QEMU: a machine is a QEMU process on a qcow2 overlay; a snapshot is that overlay, kept;
 *  - DigitalOcean: droplet -> shutdown action -> snapshot action -> image id;
 *  - AWS EC2: instance -> StopInstances -> CreateImage -> AMI (+ EBS snapshots).
 * Everything a provider creates carries labels (tags) so that it can be found again without
 * local state: see LABELS.
 */
import type { z } from 'zod';
import type { EventSink } from '../core/events.js';

/** Label keys put on every resource (tags on clouds, metadata files locally). */
export const LABELS = {
  project: 'provisional-project',
  run: 'provisional-run',
  role: 'provisional-role', // 'builder' | 'server'
  image: 'provisional-image',
  version: 'provisional-version',
  environment: 'provisional-env',
  /** A keyed hash of a server's runtime config (env values, deploy scripts): never the values. */
  config: 'provisional-config',
} as const;

export interface ProviderContext {
  /** Project name (config `project:`), used to keep this project's images apart from others'. */
  project: string;
  /** Absolute path of the application directory (where config/provisional lives). */
  projectDir: string;
  /** Progress and log events; providers never print. */
  events: EventSink;
}

/** A base image a provider offers (a DigitalOcean slug, an AMI, the local debian-12). */
export interface BaseImage {
  ref: string;
  description: string;
  /** Whether it is ready now (locally: built or downloaded already). */
  ready: boolean;
  sizeBytes?: number;
  /** What the ref resolves to now (images/base-drift.ts compares it with a version's baseId); unknown until ready. */
  id?: string;
  /** When the base behind the ref was built or published (ISO 8601), when the provider says. */
  createdAt?: string;
}

/** Where a builder or a server boots from. */
export type SourceImage =
  /** `id` is what a machine boots (an image id, a local disk); `identity` what the ref resolved to, recorded as a version's baseId. */
  | { kind: 'base'; ref: string; id: string; identity: string }
  | { kind: 'version'; version: ImageVersion };

export interface ImageVersionMetadata {
  /** Project image name, e.g. `app`. */
  image: string;
  /** `NAME-YYYYMMDDHHMMSS` (UTC). */
  version: string;
  /** What it was built from: a base ref, or the parent image's version name. */
  parent: { kind: 'base'; ref: string } | { kind: 'image'; image: string; version: string };
  /** sha256 of the inputs (scripts, files, image config, resolved parent). */
  inputHash: string;
  toolVersion: string;
  /** ISO 8601, UTC. */
  createdAt: string;
  /**
   * Set while the version's image tests run (the id of the run testing it): such a version is
   * never chosen (images/choice.ts), and a run that died leaves it for `provisional cleanup`.
   */
  testing?: string;
  /** Taken out of use by `provisional image revoke` (why, and when: ISO 8601, UTC). */
  revoked?: { reason: string; at: string };
  /**
   * The provider's identity of the base at the bottom of the chain when this version was built (a
   * DigitalOcean image id, an AMI id, a Hetzner image id, a local base's digest). Absent on versions
   * built before it was recorded: their base counts as unknown, never as moved.
   */
  baseId?: string;
  /** Where the version came from; absent on versions built before it was recorded. */
  provenance?: Provenance;
}

/** What `provisional image show` prints about a version's origin. */
export interface Provenance {
  /** The project's git commit, when the project is in a git work tree. */
  commit?: string;
  /** Whether that tree had uncommitted changes. */
  dirty?: boolean;
  /** The builder's size in the provider's words (a droplet slug, an instance type, local memory and CPUs). */
  builderSize?: string;
  /** The image's scripts, in the order they ran. */
  scripts: string[];
  /** The image's tests (config/provisional/<image>/tests), in the order they ran. */
  tests: string[];
}

/** A change to a stored version's marks: a value sets the mark, null lifts it, absent leaves it. */
export interface VersionMetadataPatch {
  testing?: string | null;
  revoked?: { reason: string; at: string } | null;
}

export interface ImageVersion extends ImageVersionMetadata {
  /** The provider's own id (a file path, a snapshot id, an AMI id). */
  id: string;
  status: 'available' | 'pending' | 'failed';
  sizeBytes?: number;
  /** Regions where the version can be used (cloud providers). */
  regions?: string[];
}

export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
}

declare const machineHandle: unique symbol;
/**
 * What a provider keeps about a machine it launched in this process (temporary keys and groups
 * to remove with it): opaque to everyone else. Machines found again by listServers have none.
 */
export type MachineHandle = { readonly [machineHandle]: true };

/** A running (or stopped) machine: a builder during a build, a server after a deploy. */
export interface Machine {
  id: string;
  name: string;
  ssh: SshEndpoint;
  /** Only what is stored at the provider (tags, metadata files): never private state. */
  labels: Record<string, string>;
  handle?: MachineHandle;
}

/**
 * Launch options, in the config's words (an image's `size:`, a deployment's `size:`, `region:`,
 * `ports:`). Each provider's `launchOptionsSchema` says which it takes and what they mean; a value
 * it cannot honour is refused at launch, before anything is created, never silently ignored.
 */
export interface LaunchOptions {
  /** A droplet size slug, an instance type. */
  size?: string;
  region?: string;
  /** Local: "HOST:GUEST" TCP forwards from 127.0.0.1. */
  ports?: string[];
  /** Local: MiB of memory and virtual CPUs (its sizes). */
  memory?: number;
  cpus?: number;
}

export interface LaunchRequest {
  /** Name for the machine, e.g. `provisional-build-app-<run>` or `app1.staging`. */
  name: string;
  source: SourceImage;
  /** OpenSSH public key line to authorise for root. */
  authorizedKey: string;
  labels: Record<string, string>;
  options?: LaunchOptions;
}

export interface Server extends Machine {
  state: 'starting' | 'running' | 'stopped' | 'dead' | 'unknown';
  address?: string;
}

/**
 * A stable address for one image's servers in one environment (`deployments.<env>.<image>.endpoint`):
 * a local HAProxy, a DigitalOcean load balancer or reserved IP, an ELBv2 target group or an Elastic
 * IP. Found again by its name/labels (project, environment, image), never by local state.
 */
export interface EndpointRef {
  project: string;
  environment: string;
  image: string;
}

/** An image's HTTP health check (`health-check.http`), for endpoints that check members themselves. */
export interface HttpHealthCheck {
  port: number;
  path: string;
  /** The status a healthy server answers. */
  status: number;
}

export interface EndpointMember {
  /** The machine's provider id (droplet id, instance id, local machine name). */
  machineId: string;
  name?: string;
  /** What the endpoint knows of it: only `healthy` members get new connections. */
  state: 'healthy' | 'unhealthy' | 'joining' | 'draining' | 'unknown';
}

export interface EndpointStatus {
  /** The endpoint's kind, as in the config (`haproxy`, `load-balancer`, `reserved-ip`, `target-group`, `elastic-ip`). */
  kind: string;
  /** Where clients connect: `127.0.0.1:8080`, `203.0.113.7:80`, a DNS name. */
  address: string;
  members: EndpointMember[];
}

/**
 * A provider's endpoints. deploy/ moves traffic only through these methods, the same way on every
 * provider: ensure (idempotent create), attach healthy new servers, detach old ones (no new
 * connections, drained, then gone), and remove with the environment. `spec` is the parsed
 * `endpoint:` block (see ProviderDefinition.endpointSchema); it is undefined in status, detach and
 * remove when the config no longer names the endpoint (`destroy`, `cleanup` after the user removed
 * it): the endpoint is then found by `ref` alone.
 */
export interface Endpoints {
  /**
   * Why the endpoint cannot be had (a local port another program holds), or undefined: asked by
   * deploy before anything is created, so that such a deploy fails with exit 2, nothing changed.
   */
  check?(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<string | undefined>;
  /**
   * Create the endpoint if it does not exist (members unchanged); returns its status. `health`
   * is the image's HTTP health check, for endpoints that check members themselves (a load
   * balancer's health check); an existing endpoint takes the new one.
   */
  ensure(ref: EndpointRef, spec: unknown, signal: AbortSignal, opts?: { health?: HttpHealthCheck }): Promise<EndpointStatus>;
  /** Add machines (already healthy); resolves once the endpoint sends them traffic. */
  attach(ref: EndpointRef, spec: unknown, machines: Machine[], signal: AbortSignal): Promise<void>;
  /**
   * Stop new connections to the machines, wait until their open ones finished (at most
   * drainMs), then remove them from the endpoint. Machines that are not members are ignored.
   */
  detach(ref: EndpointRef, spec: unknown, machines: Pick<Machine, 'id' | 'name'>[], drainMs: number, signal: AbortSignal): Promise<void>;
  /** The endpoint as the provider has it now, or undefined if there is none. */
  status(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<EndpointStatus | undefined>;
  /** Remove the endpoint (destroy, cleanup). Idempotent. */
  remove(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<void>;
  /** Every endpoint of the project, for `server list`, `destroy` and `cleanup` (members of dead runs). */
  list(project: string, signal: AbortSignal): Promise<(EndpointRef & EndpointStatus)[]>;
}

export interface Provider {
  readonly name: string;
  /** One line for the user, e.g. `local QEMU 7.2 (accelerator: tcg, KVM unusable: ...)`. */
  describe(): Promise<string>;

  /** Base images this provider offers. Never builds or downloads anything. */
  listBaseImages(signal: AbortSignal): Promise<BaseImage[]>;
  /** Every version of every image of this project. */
  listImageVersions(signal: AbortSignal): Promise<ImageVersion[]>;

  /** Make a base ready to boot (the local provider builds or downloads it on first use). */
  prepareBase(ref: string, signal: AbortSignal): Promise<SourceImage & { kind: 'base' }>;
  /**
   * What a base ref resolves to now (the `identity` prepareBase would give), without making
   * anything; undefined when it is not ready (a local base not built yet).
   */
  resolveBase(ref: string, signal: AbortSignal): Promise<string | undefined>;
  /**
   * Build the base behind `ref` again from current packages (`provisional base update`; providers
   * that build their bases: local). The previous build stays for the versions built on it.
   */
  updateBase?(ref: string, signal: AbortSignal): Promise<{ previous?: string; current: string; createdAt: string }>;
  /** The size a machine launched with these options runs at, in the provider's words (recorded as a version's builder size). */
  sizeOf(options: LaunchOptions | undefined): string;

  /** Start a machine; resolves once the provider reports it running with an SSH endpoint. */
  launchMachine(req: LaunchRequest, signal: AbortSignal): Promise<Machine>;
  /**
   * Start several machines at once; machines come back in the order of `reqs`, each from its own
   * request (image, size, labels, key). Requests that one API call can share are grouped by the
   * shared kit (providers/kit/launch.ts); launchMachine is the batch of one. Either every machine
   * starts, or none is left.
   */
  launchMachines(reqs: LaunchRequest[], signal: AbortSignal): Promise<Machine[]>;
  /**
   * Wait until the machine has stopped (the pipeline asks the guest to power off over SSH
   * first); force it off if it does not stop within the provider's grace period.
   */
  stopMachine(machine: Machine, signal: AbortSignal): Promise<void>;
  /** Snapshot a stopped machine as a new version. Only resolves once the version is complete. */
  snapshotMachine(machine: Machine, meta: ImageVersionMetadata, signal: AbortSignal): Promise<ImageVersion>;
  /**
   * Make a complete version available in more regions (cloud providers), in parallel; resolves
   * with the version listing every region once all copies are usable.
   */
  distributeVersion?(version: ImageVersion, regions: string[], signal: AbortSignal): Promise<ImageVersion>;
  /** Destroy a machine and everything launchMachine created for it. Idempotent. */
  destroyMachine(machine: Machine, signal: AbortSignal): Promise<void>;

  /**
   * Change a stored version's marks (being tested, revoked) at the provider, where every machine
   * sees them; the rest of its metadata stays. Resolves with the version as now listed.
   */
  updateVersionMetadata(version: ImageVersion, patch: VersionMetadataPatch, signal: AbortSignal): Promise<ImageVersion>;

  /** Delete a version (everywhere it exists). The caller has checked nothing depends on it. */
  deleteImageVersion(version: ImageVersion, signal: AbortSignal): Promise<void>;

  /** Machines of this project (builders and servers), found by their labels. */
  listServers(filter: Partial<Record<keyof typeof LABELS, string>>, signal: AbortSignal): Promise<Server[]>;

  /**
   * Remove what a run left besides machines (temporary keys, security groups, half-made
   * snapshots named in `snapshots`: versions whose snapshot step never finished), found by the
   * run id in names or tags. Returns what it removed (or, with
   * dryRun, what it would). Used by `provisional cleanup` after a crash.
   */
  removeRunResources?(runId: string, opts: { dryRun: boolean; signal: AbortSignal; snapshots?: string[] }): Promise<string[]>;

  /** Stable endpoints (load balancers, reserved addresses), for providers that have them. */
  readonly endpoints?: Endpoints;

  /** Release anything held (connections, timers). */
  close?(): Promise<void>;
}

export interface ProviderDefinition<S = unknown> {
  /** Equal to the folder name. */
  name: string;
  description: string;
  /** The base `provisional init` writes into the sample config. */
  sampleBaseRef: string;
  /**
   * The endpoint `provisional init` gives the sample staging app, as a YAML flow mapping
   * (local: `{ port: 8080, target-port: 80 }`); none when undefined.
   */
  sampleEndpoint?: string;
  /** Schema of the `provider:` block's settings (the keys beside `name`). */
  settingsSchema: z.ZodType<S>;
  /** Which LaunchOptions this provider takes (see kit/options.ts); unknown keys are refused. */
  launchOptionsSchema: z.ZodType<unknown>;
  /**
   * Schema of `deployments.<env>.<image>.endpoint` for this provider: the kinds it has and their
   * settings (unknown keys refused). Undefined if the provider has no endpoints.
   */
  endpointSchema?: z.ZodType<unknown>;
  /**
   * What a parsed `endpoint:` is: its kind (as EndpointStatus.kind) and whether it is one address
   * for one server (a reserved or Elastic IP), which config validation refuses on an image with
   * more than one server.
   */
  describeEndpoint?(spec: unknown): { kind: string; oneServer: boolean };
  /** Base refs this provider knows without calling anything (for `validate`); undefined if open-ended. */
  knownBaseRefs?(settings: S): string[] | undefined;
  /** Static check of a base-image reference. Returns a message if it cannot be right. */
  checkBaseRef?(ref: string, settings: S): string | undefined;
  /** Extra constraints on image names. Returns a message if the provider cannot take it. */
  checkImageName?(name: string): string | undefined;
  /** Secrets among the settings, to redact from every output. */
  secrets?(settings: S): string[];
  /** Create the provider; heavy modules (SDKs) are imported here, lazily. */
  create(settings: S, ctx: ProviderContext): Promise<Provider>;
}
