/**
 * The hetzner provider: builders and servers are Hetzner Cloud servers, versions are snapshots.
 * Only the settings load eagerly; the HTTP client loads in create().
 */
import type { ProviderDefinition } from '../types.js';
import { describeHetznerEndpoint, hetznerEndpointSchema } from './endpoint-spec.js';
import { checkBaseRef, hetznerLaunchOptionsSchema, hetznerSettingsSchema, resolveToken, type HetznerSettings } from './settings.js';

const hetzner: ProviderDefinition<HetznerSettings> = {
  name: 'hetzner',
  description: 'Hetzner Cloud servers and snapshots (API v1)',
  sampleBaseRef: 'debian-12',
  settingsSchema: hetznerSettingsSchema,
  launchOptionsSchema: hetznerLaunchOptionsSchema,
  endpointSchema: hetznerEndpointSchema,
  describeEndpoint: describeHetznerEndpoint,
  checkBaseRef: (ref) => checkBaseRef(ref),
  // Versions are NAME-YYYYMMDDHHMMSS and server names host names: the core rule fits.
  checkImageName: () => undefined,
  secrets: (settings) => [resolveToken(settings)].filter((t): t is string => !!t),
  async create(settings, ctx) {
    const { HetznerProvider } = await import('./provider.js');
    return new HetznerProvider(settings, ctx);
  },
};

export default hetzner;
