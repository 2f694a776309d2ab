/**
 * What an instance is made of, behind the API: a machine booted from a layer (a file system
 * image), stopped, started, snapshotted into a new layer, destroyed. The EC2 emulator sees only
 * this interface; `machineBackend` (machine-backend.ts) puts real containers with sshd behind it,
 * `memoryBackend` bookkeeping only, for protocol tests that need no SSH.
 */

export interface LaunchedMachine {
  /** The backend's handle. */
  id: string;
  /** Where the machine's sshd listens (its public and private address). */
  address: string;
  sshPort: number;
}

export interface InstanceBackend {
  /** The layer public Debian 12 AMIs boot from. */
  readonly baseLayer: string;
  /** The port every machine's sshd listens on (22 unless the host holds it). */
  readonly sshPort: number;
  launch(opts: { name: string; layer: string; authorizedKeys: string[]; labels: Record<string, string> }): Promise<LaunchedMachine>;
  /** Clean shutdown (forced after a grace period). */
  stop(id: string): Promise<void>;
  start(id: string): Promise<void>;
  /** Freezes the machine's disk as a new layer; a running machine is copied as it is. */
  snapshot(id: string): Promise<string>;
  destroy(id: string): Promise<void>;
  deleteLayer(layer: string): Promise<void>;
  layerSize?(layer: string): Promise<number>;
  /** Called (once set) when a machine stops by itself: a poweroff inside it, a crash. */
  onExit?: (id: string) => void;
  close(): Promise<void>;
}

/** Machines as records only: addresses from 10.0.0.0/8 that nothing answers on. */
export function memoryBackend(opts: { launchMs?: number } = {}): InstanceBackend & { machines: Map<string, { layer: string; running: boolean }>; layers: Set<string> } {
  const machines = new Map<string, { layer: string; running: boolean }>();
  const layers = new Set<string>(['debian-12']);
  let seq = 0;
  const must = (id: string) => {
    const m = machines.get(id);
    if (!m) throw new Error(`no machine ${id}`);
    return m;
  };
  return {
    baseLayer: 'debian-12',
    sshPort: 22,
    machines,
    layers,
    async launch({ layer }) {
      if (!layers.has(layer)) throw new Error(`no layer ${layer}`);
      if (opts.launchMs) await new Promise((resolve) => setTimeout(resolve, opts.launchMs));
      const n = ++seq;
      const id = `mem-${n}`;
      machines.set(id, { layer, running: true });
      return { id, address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, sshPort: 22 };
    },
    async stop(id) {
      must(id).running = false;
    },
    async start(id) {
      must(id).running = true;
    },
    async snapshot(id) {
      must(id);
      const layer = `layer-${++seq}`;
      layers.add(layer);
      return layer;
    },
    async destroy(id) {
      machines.delete(id);
    },
    async deleteLayer(layer) {
      if (layer !== 'debian-12') layers.delete(layer);
    },
    async close() {
      machines.clear();
    },
  };
}
