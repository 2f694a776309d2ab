/**
 * The digitalocean provider: builders and servers are droplets, image versions are snapshots.
 * Only the settings load eagerly; the HTTP client loads in create().
 */
import type { ProviderDefinition } from '../types.js';
import { describeDigitalOceanEndpoint, digitalOceanEndpointSchema } from './endpoint-spec.js';
import { checkBaseRef, digitalOceanLaunchOptionsSchema, digitalOceanSettingsSchema, resolveToken, type DigitalOceanSettings } from './settings.js';

const digitalocean: ProviderDefinition<DigitalOceanSettings> = {
  name: 'digitalocean',
  description: 'DigitalOcean droplets and snapshots (API v2)',
  sampleBaseRef: 'debian-12-x64',
  settingsSchema: digitalOceanSettingsSchema,
  launchOptionsSchema: digitalOceanLaunchOptionsSchema,
  endpointSchema: digitalOceanEndpointSchema,
  describeEndpoint: describeDigitalOceanEndpoint,
  checkBaseRef: (ref) => checkBaseRef(ref),
  // Snapshot names are NAME-YYYYMMDDHHMMSS and droplet names must be host names: the core rule fits.
  checkImageName: () => undefined,
  secrets: (settings) => [resolveToken(settings)].filter((t): t is string => !!t),
  async create(settings, ctx) {
    const { DigitalOceanProvider } = await import('./provider.js');
    return new DigitalOceanProvider(settings, ctx);
  },
};

export default digitalocean;
