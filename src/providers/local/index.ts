/**
 * The local provider: machines are QEMU processes on qcow2 overlays, versions are those overlays
 * kept. Only the settings schema and name checks load eagerly (`validate` needs them); QEMU,
 * mmdebstrap and the file store are imported in create().
 */
import type { ProviderDefinition } from '../types.js';
import {
  checkBaseRef,
  checkImageName,
  knownBaseRefs,
  localEndpointSchema,
  localSettingsSchema,
  machineOptionsSchema,
  type LocalSettings,
} from './settings.js';

const local: ProviderDefinition<LocalSettings> = {
  name: 'local',
  description: 'QEMU virtual machines on this computer (KVM when usable, else software emulation)',
  sampleBaseRef: 'debian-12',
  sampleEndpoint: '{ port: 8080, target-port: 80 }   # curl http://127.0.0.1:8080/ after a deploy',
  settingsSchema: localSettingsSchema,
  launchOptionsSchema: machineOptionsSchema,
  endpointSchema: localEndpointSchema,
  describeEndpoint: () => ({ kind: 'haproxy', oneServer: false }),
  knownBaseRefs,
  checkBaseRef,
  checkImageName,
  async create(settings, ctx) {
    const { LocalProvider } = await import('./provider.js');
    return new LocalProvider(localSettingsSchema.parse(settings), ctx);
  },
};

export default local;
