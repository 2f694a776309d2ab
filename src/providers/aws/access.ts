/**
 * How SSH gets into an instance: the key pair it boots with, and a security group letting port 22
 * in. Builders get temporary ones named after their run (`provisional-build-RUN`), removed with
 * the builder (or by `provisional cleanup` after a crash); servers share the project's, found
 * again by name and kept.
 */
import { createHash } from 'node:crypto';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  ImportKeyPairCommand,
} from '@aws-sdk/client-ec2';
import { creatingSignal, quietly, teardownSignal } from '../../core/teardown.js';
import { LABELS, type LaunchRequest } from '../types.js';
import { hasCode, toTags, type Ec2 } from './client.js';
import { sharedResources } from '../kit/shared-resource.js';
import type { AwsSettings } from './settings.js';
import { authorizedKeyLines } from '../kit/cloud-config.js';

/** What a builder's launch made for it alone, removed with it. */
export interface TemporaryAccess {
  keyName?: string;
  groupId?: string;
}

/** The name of a run's temporary key pair and security group. */
export function buildAccessName(runId: string | undefined): string {
  return `provisional-build-${runId ?? 'run'}`;
}

export class Access {
  constructor(
    private readonly ec2: Ec2,
    private readonly settings: AwsSettings,
    private readonly project: string,
  ) {}

  private readonly shared = sharedResources();

  /**
   * The key pair and security groups for one RunInstances. A builder's are created whatever the
   * signal (see core/teardown.ts) and removed here if what follows fails.
   */
  async forLaunch(req: LaunchRequest, signal: AbortSignal): Promise<{ keyName: string; groupIds: string[]; temporary: TemporaryAccess }> {
    const builder = req.labels[LABELS.role] === 'builder';
    const temporary: TemporaryAccess = {};
    try {
      const keyName = await this.keyPair(req, builder, builder ? creatingSignal() : signal);
      if (builder) temporary.keyName = keyName;
      const groupIds = this.settings['security-group-ids'] ?? [await this.securityGroup(req, builder, signal)];
      if (builder && !this.settings['security-group-ids']) temporary.groupId = groupIds[0];
      return { keyName, groupIds, temporary };
    } catch (err) {
      await quietly('the temporary key pair and security group', () => this.remove(temporary, teardownSignal()));
      throw err;
    }
  }

  private async keyPair(req: LaunchRequest, builder: boolean, signal: AbortSignal): Promise<string> {
    const publicKey = authorizedKeyLines(req.authorizedKey)[0]!;
    const name = builder ? buildAccessName(req.labels[LABELS.run]) : `provisional-${this.project}-${fingerprint(publicKey)}`;
    const create = async () => {
      await this.ec2.call(
        'import key pair',
        (sdk, s) =>
          sdk.send(new ImportKeyPairCommand({ KeyName: name, PublicKeyMaterial: Buffer.from(publicKey), TagSpecifications: [{ ResourceType: 'key-pair', Tags: toTags(req.labels) }] }), {
            abortSignal: s,
          }),
        signal,
      );
      return name;
    };
    if (builder) return create();
    // The project's, shared by every server (kit/shared-resource.ts).
    return this.shared.get(`key-pair:${name}`, {
      find: async () => {
        const found = await this.ec2.call('find key pair', (sdk, s) => sdk.send(new DescribeKeyPairsCommand({ Filters: [{ Name: 'key-name', Values: [name] }] }), { abortSignal: s }), signal);
        return found.KeyPairs?.length ? name : undefined;
      },
      create,
      conflict: (err) => hasCode(err, /^InvalidKeyPair\.Duplicate$/),
    });
  }

  private async securityGroup(req: LaunchRequest, builder: boolean, signal: AbortSignal): Promise<string> {
    const name = builder ? buildAccessName(req.labels[LABELS.run]) : `provisional-${this.project}`;
    const create = () => this.createGroup(name, req, builder, signal);
    if (builder) return create();
    // The project's, shared by every server (kit/shared-resource.ts).
    return this.shared.get(`security-group:${name}`, {
      find: async () => {
        const found = await this.ec2.call('find security group', (sdk, s) => sdk.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }] }), { abortSignal: s }), signal);
        return found.SecurityGroups?.[0]?.GroupId;
      },
      create,
      conflict: (err) => hasCode(err, /^InvalidGroup\.Duplicate$/),
    });
  }

  private async createGroup(name: string, req: LaunchRequest, builder: boolean, signal: AbortSignal): Promise<string> {
    let vpcId: string | undefined;
    const subnetId = this.settings['subnet-id'];
    if (subnetId) {
      const subnets = await this.ec2.call('find subnet', (sdk, s) => sdk.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] }), { abortSignal: s }), signal);
      vpcId = subnets.Subnets?.[0]?.VpcId;
    }
    const group = await this.ec2.call(
      'create security group',
      (sdk, s) =>
        sdk.send(
          new CreateSecurityGroupCommand({
            GroupName: name,
            Description: builder ? 'Provisional build: SSH in, temporary' : `Provisional servers of ${this.project}: SSH in`,
            VpcId: vpcId,
            TagSpecifications: [{ ResourceType: 'security-group', Tags: toTags(req.labels) }],
          }),
          { abortSignal: s },
        ),
      builder ? creatingSignal() : signal,
    );
    try {
      await this.ec2.call(
        'let SSH in',
        (sdk, s) =>
          sdk.send(
            new AuthorizeSecurityGroupIngressCommand({
              GroupId: group.GroupId,
              IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: this.settings['ssh-cidr'] }] }],
            }),
            { abortSignal: s },
          ),
        signal,
      );
    } catch (err) {
      await quietly(`security group ${group.GroupId}`, () => this.deleteGroup(group.GroupId!, teardownSignal()));
      throw err;
    }
    return group.GroupId!;
  }

  /** Remove a builder's temporary key pair and security group (its instances must be gone). */
  async remove(temporary: TemporaryAccess, signal: AbortSignal): Promise<void> {
    if (temporary.keyName) await this.deleteKeyPair(temporary.keyName, signal);
    if (temporary.groupId) await this.deleteGroup(temporary.groupId, signal);
  }

  async deleteKeyPair(keyName: string, signal: AbortSignal): Promise<void> {
    await this.ec2.call('delete the build key pair', (sdk, s) => sdk.send(new DeleteKeyPairCommand({ KeyName: keyName }), { abortSignal: s }), signal);
  }

  async deleteGroup(groupId: string, signal: AbortSignal): Promise<void> {
    await this.ec2.call('delete the build security group', (sdk, s) => sdk.send(new DeleteSecurityGroupCommand({ GroupId: groupId }), { abortSignal: s }), signal);
  }

  /** Key pairs and security groups a run left (found by their names). */
  async leftBy(runId: string, signal: AbortSignal): Promise<{ keyNames: string[]; groups: { id: string; name: string }[] }> {
    const name = buildAccessName(runId);
    const keys = await this.ec2.call('find key pairs', (sdk, s) => sdk.send(new DescribeKeyPairsCommand({ Filters: [{ Name: 'key-name', Values: [name] }] }), { abortSignal: s }), signal);
    const groups = await this.ec2.call('find security groups', (sdk, s) => sdk.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }] }), { abortSignal: s }), signal);
    return {
      keyNames: (keys.KeyPairs ?? []).map((k) => k.KeyName!),
      groups: (groups.SecurityGroups ?? []).map((g) => ({ id: g.GroupId!, name: g.GroupName ?? g.GroupId! })),
    };
  }
}

/**
 * A short, stable name part for a public key: the first 16 hex digits of its sha256 (a 32-bit
 * hash made two different keys share a key pair name, and one of them then could not log in).
 */
export function fingerprint(publicKey: string): string {
  const body = publicKey.split(/\s+/)[1] ?? publicKey;
  return createHash('sha256').update(body).digest('hex').slice(0, 16);
}
