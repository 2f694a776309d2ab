/**
 * Instances as real machines: the emulators' MachinePool (systemd-nspawn containers over
 * copy-on-write layers, each with sshd on its own loopback address). A snapshot's layer is the
 * machine's disk frozen, so an instance run from an AMI sees what scripts left on the builder.
 */
import { BASE_LAYER, MachinePool, type MachinePoolOptions } from '../machines/pool.js';
import type { InstanceBackend } from './backend.js';

export async function machineBackend(opts: MachinePoolOptions = {}, signal?: AbortSignal): Promise<InstanceBackend & { pool: MachinePool }> {
  let backend: InstanceBackend & { pool: MachinePool };
  const pool = await MachinePool.open({ ...opts, onExit: (id) => backend.onExit?.(id) }, signal);
  backend = {
    pool,
    baseLayer: BASE_LAYER,
    sshPort: pool.sshPort,
    async launch({ name, layer, authorizedKeys, labels }) {
      const machine = await pool.create({ name, layer, authorizedKeys, labels });
      return { id: machine.id, address: machine.ip, sshPort: machine.port };
    },
    stop: (id) => pool.stop(id),
    start: (id) => pool.start(id),
    snapshot: (id) => pool.snapshot(id),
    // A clean shutdown first, as EC2's terminate does. (pool.destroy alone SIGKILLs the top
    // process only, and the container's systemd could outlive it.)
    async destroy(id) {
      await pool.stop(id, { timeoutMs: 10_000 }).catch(() => undefined);
      await pool.destroy(id);
    },
    deleteLayer: (layer) => pool.deleteLayer(layer),
    layerSize: (layer) => pool.layerSize(layer),
    close: () => pool.close(),
  };
  return backend;
}
