/** SSH public keys as cloud APIs show them. */
import { createHash } from 'node:crypto';

/** MD5 fingerprint of an OpenSSH public key line (aa:bb:...), as DigitalOcean and Hetzner show it; undefined if it is not one. */
export function fingerprint(publicKey: string): string | undefined {
  const [type, blob] = publicKey.trim().split(/\s+/);
  if (!type || !blob || !/^(ssh-|ecdsa-|sk-)/.test(type)) return undefined;
  const bytes = Buffer.from(blob, 'base64');
  if (bytes.length < 16 || bytes.toString('base64').replace(/=+$/, '') !== blob.replace(/=+$/, '')) return undefined;
  return createHash('md5').update(bytes).digest('hex').match(/../g)!.join(':');
}
