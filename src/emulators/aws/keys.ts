/**
 * Key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair. An instance launched
 * with KeyName gets the pair's public key as root's authorized key, so the private key that
 * CreateKeyPair answers logs in.
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateKeyPair.html
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ImportKeyPair.html
 */
import { createHash, createPublicKey, generateKeyPair as generateNodeKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { generateKeyPair as generateEd25519KeyPair } from '../../ssh/client.js';
import type { Handler } from './cloud.js';
import { Ec2Error, notFound } from './errors.js';
import { applyFilters, newId, tagsXml, tagSpecifications, type FilterFields, type KeyPair, type RegionState } from './resources.js';
import type { XmlObject } from './xml.js';

/** Reads an SSH wire-format string at `offset`. */
function sshString(blob: Buffer, offset: number): [Buffer, number] {
  if (offset + 4 > blob.length) throw new Error('truncated');
  const length = blob.readUInt32BE(offset);
  if (offset + 4 + length > blob.length) throw new Error('truncated');
  return [blob.subarray(offset + 4, offset + 4 + length), offset + 4 + length];
}

/**
 * Checks an OpenSSH public key line and computes EC2's fingerprint of it: for RSA the MD5 of the
 * DER public key, colon-separated; for ED25519 the base64 SHA-256 of the key blob.
 */
export function parsePublicKey(line: string): { type: 'rsa' | 'ed25519'; fingerprint: string; normalized: string } {
  const invalid = () => new Ec2Error('InvalidKey.Format', 'Key is not in valid OpenSSH public key format');
  const [algorithm, data, ...comment] = line.trim().split(/\s+/);
  if (!data || (algorithm !== 'ssh-rsa' && algorithm !== 'ssh-ed25519')) throw invalid();
  const blob = Buffer.from(data, 'base64');
  try {
    const [name, afterName] = sshString(blob, 0);
    if (name.toString() !== algorithm) throw invalid();
    const normalized = [algorithm, data, ...comment].join(' ');
    if (algorithm === 'ssh-ed25519') {
      const [key] = sshString(blob, afterName);
      if (key.length !== 32) throw invalid();
      return { type: 'ed25519', fingerprint: createHash('sha256').update(blob).digest('base64'), normalized };
    }
    const [e, afterE] = sshString(blob, afterName);
    const [n] = sshString(blob, afterE);
    const strip = (b: Buffer) => (b[0] === 0 ? b.subarray(1) : b);
    const der = createPublicKey({ key: { kty: 'RSA', e: strip(e).toString('base64url'), n: strip(n).toString('base64url') }, format: 'jwk' }).export({
      type: 'spki',
      format: 'der',
    });
    const md5 = createHash('md5').update(der).digest('hex');
    return { type: 'rsa', fingerprint: md5.match(/../g)!.join(':'), normalized };
  } catch (err) {
    if (err instanceof Ec2Error) throw err;
    throw invalid();
  }
}

function keyPairXml(key: KeyPair, includePublicKey: boolean): XmlObject {
  return {
    keyPairId: key.id,
    keyType: key.type,
    tagSet: tagsXml(key.tags),
    publicKey: includePublicKey ? key.publicKey : undefined,
    createTime: key.createTime,
    keyName: key.name,
    keyFingerprint: key.fingerprint,
  };
}

const KEY_FILTERS: FilterFields<KeyPair> = {
  'key-name': (k) => k.name,
  'key-pair-id': (k) => k.id,
  fingerprint: (k) => k.fingerprint,
  'key-type': (k) => k.type,
};

function byName(region: RegionState, name: string): KeyPair | undefined {
  return [...region.keyPairs.values()].find((k) => k.name === name);
}

function checkKeyName(name: string): void {
  if (name.length > 255 || !/^[\x20-\x7e]+$/.test(name)) throw new Ec2Error('InvalidParameterValue', `Invalid key pair name '${name}'`);
}

function sshBlobString(data: Buffer | string): Buffer {
  const bytes = Buffer.from(data);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** An SSH mpint: big-endian, with a zero byte in front when the high bit is set. */
function sshMpint(base64url: string): Buffer {
  let bytes = Buffer.from(base64url, 'base64url');
  while (bytes.length > 1 && bytes[0] === 0 && bytes[1] < 0x80) bytes = bytes.subarray(1);
  return sshBlobString(bytes[0] >= 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

const generateRsa = promisify(generateNodeKeyPair);

/**
 * A new key as EC2 makes one: RSA 2048 with the private key in PEM (PKCS#1), fingerprinted by the
 * SHA-1 of the DER private key (PKCS#8); ED25519 in OpenSSH format, fingerprinted by the SHA-256
 * of the public key.
 */
async function newKey(type: 'rsa' | 'ed25519', name: string): Promise<{ publicKey: string; privateKey: string; fingerprint: string }> {
  if (type === 'ed25519') {
    const pair = generateEd25519KeyPair(name);
    return { publicKey: pair.publicKey, privateKey: pair.privateKey, fingerprint: parsePublicKey(pair.publicKey).fingerprint };
  }
  const { publicKey, privateKey } = await generateRsa('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const blob = Buffer.concat([sshBlobString('ssh-rsa'), sshMpint(jwk.e!), sshMpint(jwk.n!)]);
  const sha1 = createHash('sha1').update(privateKey.export({ type: 'pkcs8', format: 'der' })).digest('hex');
  return {
    publicKey: `ssh-rsa ${blob.toString('base64')} ${name}`,
    privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString().trimEnd(),
    fingerprint: sha1.match(/../g)!.join(':'),
  };
}

const createKeyPair: Handler = async (_cloud, region, params) => {
  const name = params.required('KeyName');
  checkKeyName(name);
  const type = params.str('KeyType') ?? 'rsa';
  if (type !== 'rsa' && type !== 'ed25519') throw new Ec2Error('InvalidParameterValue', `Invalid value '${type}' for KeyType`);
  const format = params.str('KeyFormat') ?? 'pem';
  if (format !== 'pem') throw new Ec2Error('InvalidParameterValue', `Invalid value '${format}' for KeyFormat: the emulator makes pem keys only`);
  const tags = tagSpecifications(params, 'key-pair', ['key-pair']);
  if (byName(region, name)) throw new Ec2Error('InvalidKeyPair.Duplicate', `The keypair '${name}' already exists.`);
  const generated = await newKey(type, name);
  // Another request may have taken the name while the key was being made.
  if (byName(region, name)) throw new Ec2Error('InvalidKeyPair.Duplicate', `The keypair '${name}' already exists.`);
  const key: KeyPair = { id: newId('key'), name, type, fingerprint: generated.fingerprint, publicKey: generated.publicKey, createTime: new Date(), tags };
  region.keyPairs.set(key.id, key);
  return { keyPairId: key.id, tagSet: tagsXml(key.tags), keyName: key.name, keyFingerprint: key.fingerprint, keyMaterial: generated.privateKey };
};

const importKeyPair: Handler = (_cloud, region, params) => {
  const name = params.required('KeyName');
  checkKeyName(name);
  const material = Buffer.from(params.required('PublicKeyMaterial'), 'base64').toString('utf8');
  const parsed = parsePublicKey(material);
  if (byName(region, name)) throw new Ec2Error('InvalidKeyPair.Duplicate', `The keypair '${name}' already exists.`);
  const key: KeyPair = {
    id: newId('key'),
    name,
    type: parsed.type,
    fingerprint: parsed.fingerprint,
    publicKey: parsed.normalized,
    createTime: new Date(),
    tags: tagSpecifications(params, 'key-pair', ['key-pair']),
  };
  region.keyPairs.set(key.id, key);
  return { keyFingerprint: key.fingerprint, keyName: key.name, keyPairId: key.id, tagSet: tagsXml(key.tags) };
};

const describeKeyPairs: Handler = (_cloud, region, params) => {
  let keys = [...region.keyPairs.values()];
  const names = params.strings('KeyName');
  const ids = params.strings('KeyPairId');
  if (names.length) {
    const missing = names.filter((n) => !byName(region, n));
    if (missing.length) throw notFound('keyPair', missing);
    keys = keys.filter((k) => names.includes(k.name));
  }
  if (ids.length) {
    const missing = ids.filter((id) => !region.keyPairs.has(id));
    if (missing.length) throw new Ec2Error('InvalidKeyPair.NotFound', `The key pair ID '${missing.join(', ')}' does not exist`);
    keys = keys.filter((k) => ids.includes(k.id));
  }
  keys = applyFilters(keys, params, KEY_FILTERS);
  const include = params.bool('IncludePublicKey') ?? false;
  return { keySet: keys.map((k) => keyPairXml(k, include)) };
};

/** Deleting a key pair that does not exist succeeds, as in EC2. */
const deleteKeyPair: Handler = (_cloud, region, params) => {
  const id = params.str('KeyPairId');
  const name = params.str('KeyName');
  if (!id && !name) throw new Ec2Error('MissingParameter', 'The request must contain the parameter KeyName or KeyPairId');
  const key = id ? region.keyPairs.get(id) : byName(region, name!);
  if (id && !key) throw new Ec2Error('InvalidKeyPair.NotFound', `The key pair ID '${id}' does not exist`);
  if (key) region.keyPairs.delete(key.id);
  return { return: true, keyPairId: key?.id };
};

export const keyPairOperations: Record<string, Handler> = {
  CreateKeyPair: createKeyPair,
  ImportKeyPair: importKeyPair,
  DescribeKeyPairs: describeKeyPairs,
  DeleteKeyPair: deleteKeyPair,
};
