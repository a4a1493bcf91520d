import {
  Aws,
  CfnCondition,
  CfnOutput,
  Duration,
  Fn,
  IResolvable,
  RemovalPolicy,
  Token,
  Tokenization,
  Validations,
} from 'aws-cdk-lib';
import {
  AccountPrincipal,
  AnyPrincipal,
  ArnPrincipal,
  CfnRole,
  Effect,
  IManagedPolicy,
  ManagedPolicy,
  Policy,
  PolicyDocument,
  PolicyStatement,
  Role,
} from 'aws-cdk-lib/aws-iam';
import { Alias, Key } from 'aws-cdk-lib/aws-kms';
import { Construct, IConstruct } from 'constructs';
import { SERVICE_NAME } from '../../lambda/contract';
import { likelyName } from '../../lambda/domain/names';
import { secretPrefixProblem } from '../../lambda/domain/naming';
import { DEFAULT_ORGANIZATION_SETTINGS } from '../../lambda/domain/organization';
import { DEFAULT_SETTINGS, resolveSettings } from '../../lambda/domain/settings';
import { KEY_ROTATION_DEFAULTS } from './key-rotation-props';
import { SECRETS_ACTIONS } from './rotator-actions';

/**
 * Props of the {@link KeyRotationMember} construct: what one member account of the organization holds
 * for the central deployment. Plain JSON, so that the same values can feed a StackSet's parameters.
 */
export interface KeyRotationMemberProps {
  /**
   * The account of the central deployment (12 digits), or a token (the StackSet's parameter), which is
   * then not checked at synth. Required.
   */
  readonly centralAccountId: string;
  /**
   * ARNs of the central functions' roles (planner, rotator), in `centralAccountId`. The trust names
   * the central account as principal and these roles in an `aws:PrincipalArn` condition, not as
   * principals: IAM would turn a role principal into the role's unique id (a role re-created under
   * the same name would no longer be trusted) and refuses a trust policy naming a role that does not
   * exist yet. They may assume the role only as the service (`sts:SourceIdentity`).
   * Literal ARNs are checked at synth; the list may also be a list token (such as a
   * CommaDelimitedList parameter's `valueAsList`, as in the StackSet's template) or hold tokens,
   * which are not. Required: at least one role, none also in `operatorRoleArns`.
   */
  readonly centralRoleArns: readonly string[];
  /**
   * ARNs of roles of `centralAccountId` that operators use to assume the member role (the central
   * stack's `secretAdminRoleArn`, as `keyrot --org` does). Trusted by a statement of their own,
   * without the source-identity condition: a source identity set by the operator's sign-in (SAML,
   * OIDC) persists and cannot be changed, so an operator's session could never match the service's.
   * A list token may hold `none` (or nothing) for no operator role: the statement is then left out
   * by a template condition. Literal ARNs are checked at synth: roles of `centralAccountId`, none
   * also in `centralRoleArns`.
   * @default [] - no operator role
   */
  readonly operatorRoleArns?: readonly string[];
  /**
   * The organization's id (`o-` and 10-32 lowercase letters or digits), for `aws:PrincipalOrgID`.
   * Required.
   */
  readonly organizationId: string;
  /**
   * Name of the member role, the same in every account (the central functions build its ARN): an IAM
   * role name (1-64 letters, digits or `+=,.@_-`), the central construct's `organization.memberRoleName`.
   * @default 'iam-key-rotation-member'
   */
  readonly memberRoleName?: string;
  /**
   * Secrets are named `<secretPrefix>/<accountId>/<userName>`, as in the central construct; the role
   * and the key are scoped to it. 1-200 letters, digits or `/_+=.@-`, without a leading or trailing `/`.
   * @default 'iam-key-rotation'
   */
  readonly secretPrefix?: string;
  /**
   * IAM paths of the users whose keys the service reads and rotates, as in the central construct: at
   * least one, each starting and ending with `/`.
   * @default ['/']
   */
  readonly includePaths?: readonly string[];
  /**
   * IAM paths whose users' keys are never modified: an explicit Deny on the key writes. Each starts
   * and ends with `/`.
   * @default []
   */
  readonly excludePaths?: readonly string[];
  /**
   * Alias of the member key, the same in every account, so that the central functions name the key
   * without knowing each account's key id. `alias/` and 1-250 letters, digits or `/_-`, not under
   * `alias/aws/` (reserved for AWS managed keys).
   * @default 'alias/iam-key-rotation-member'
   */
  readonly keyAliasName?: string;
  /**
   * ARN of a managed policy set as the member role's permissions boundary, where the organization
   * requires one on every role: `arn:aws:iam::<account>:policy/<name>` (a policy of the account, or an
   * AWS managed one). It must allow what the member role does, or rotation fails in that account.
   * @default - no permissions boundary
   */
  readonly permissionsBoundaryArn?: string;
}

/** The member construct's configuration with every default applied, validated. */
export interface ResolvedKeyRotationMemberConfig {
  /** {@link KeyRotationMemberProps.centralAccountId}, as given. */
  readonly centralAccountId: string;
  /** {@link KeyRotationMemberProps.centralRoleArns}, as given. */
  readonly centralRoleArns: readonly string[];
  /** {@link KeyRotationMemberProps.operatorRoleArns}, default applied. */
  readonly operatorRoleArns: readonly string[];
  /** {@link KeyRotationMemberProps.organizationId}, as given. */
  readonly organizationId: string;
  /** {@link KeyRotationMemberProps.memberRoleName}, default applied. */
  readonly memberRoleName: string;
  /** {@link KeyRotationMemberProps.secretPrefix}, default applied. */
  readonly secretPrefix: string;
  /** {@link KeyRotationMemberProps.includePaths}, default applied. */
  readonly includePaths: readonly string[];
  /** {@link KeyRotationMemberProps.excludePaths}, default applied. */
  readonly excludePaths: readonly string[];
  /** {@link KeyRotationMemberProps.keyAliasName}, default applied. */
  readonly keyAliasName: string;
  /**
   * {@link KeyRotationMemberProps.permissionsBoundaryArn}, as given.
   * @default - no permissions boundary
   */
  readonly permissionsBoundaryArn?: string;
}

export const KEY_ROTATION_MEMBER_DEFAULTS = {
  memberRoleName: DEFAULT_ORGANIZATION_SETTINGS.memberRoleName,
  secretPrefix: KEY_ROTATION_DEFAULTS.secretPrefix,
  keyAliasName: 'alias/iam-key-rotation-member',
} as const;

/** Output names of the member stack (a plain stack or a StackSet's instance). */
export const MEMBER_STACK_OUTPUT = { roleArn: 'MemberRoleArn', keyArn: 'MemberKeyArn' } as const;

/** Role chaining (a Lambda role assuming the member role) lasts at most one hour whatever this says. */
export const MEMBER_MAX_SESSION_DURATION = Duration.hours(1);

/**
 * What the central functions may do with the member role: assume it with the service as source
 * identity, and tag the session (a statement of its own in the trust and in the central roles'
 * policy, without the source-identity condition).
 */
export const MEMBER_TRUST_ACTIONS = ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'] as const;

/** The value of a list of operator roles (the OperatorRoleArns parameter) that means none. */
export const NO_OPERATOR_ROLES = 'none';

const MEMBER_PROPS = [
  'centralAccountId',
  'centralRoleArns',
  'operatorRoleArns',
  'organizationId',
  'memberRoleName',
  'secretPrefix',
  'includePaths',
  'excludePaths',
  'keyAliasName',
  'permissionsBoundaryArn',
] as const;

const ACCOUNT_ID = /^\d{12}$/;
/** Organizations: "o-" followed by 10 to 32 lowercase letters or digits. */
const ORGANIZATION_ID = /^o-[a-z0-9]{10,32}$/;
/** IAM role names: 1 to 64 characters of letters, digits and +=,.@_-. */
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):role\/[\w+=,.@/-]{1,512}$/;
const POLICY_ARN = /^arn:aws[a-z-]*:iam::(\d{12}|aws):policy\/[\w+=,.@/-]{1,512}$/;
/** KMS alias names: "alias/" and letters, digits, /_-; "alias/aws/" is reserved for AWS managed keys. */
const KEY_ALIAS = /^alias\/[A-Za-z0-9/_-]{1,250}$/;

/** The IAM actions both central functions use in an account (the planner's and the rotator's, together). */
const IAM_ACCOUNT_ACTIONS = ['iam:GenerateCredentialReport', 'iam:GetCredentialReport', 'iam:ListUsers'];
const IAM_READ_ACTIONS = ['iam:GetUser', 'iam:ListAccessKeys', 'iam:GetAccessKeyLastUsed'];
const IAM_KEY_WRITE_ACTIONS = ['iam:CreateAccessKey', 'iam:UpdateAccessKey', 'iam:DeleteAccessKey'];
/** What Secrets Manager asks of the caller's key to store (GenerateDataKey) and read (Decrypt) a value. */
const SECRETS_KEY_ACTIONS = ['kms:Decrypt', 'kms:GenerateDataKey'];

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** A list token (a CommaDelimitedList parameter), whose values are known at deployment only. */
function isListToken(value: unknown): boolean {
  return Array.isArray(value) && Tokenization.reverseList(value as string[]) !== undefined;
}

/** Role ARNs of the central account: literal entries checked, tokens left to the deployment. */
function checkRoleArns(
  name: 'centralRoleArns' | 'operatorRoleArns',
  arns: readonly unknown[],
  centralAccountId: string | undefined,
  problems: string[],
): void {
  for (const arn of arns) {
    if (typeof arn === 'string' && Token.isUnresolved(arn)) continue;
    const role = typeof arn === 'string' ? ROLE_ARN.exec(arn) : null;
    if (!role) {
      problems.push(
        `${name} entry ${describe(arn)} is not an IAM role ARN such as "arn:aws:iam::111122223333:role/KeyRotation-PlannerRole"`,
      );
    } else if (centralAccountId !== undefined && role[1] !== centralAccountId) {
      problems.push(
        `${name} entry ${role[0]} is in account ${role[1]}, not centralAccountId ${centralAccountId}: name roles of the central account`,
      );
    }
  }
  if (new Set(arns).size !== arns.length) {
    problems.push(`${name} names a role twice (got ${describe(arns)})`);
  }
}

/**
 * Applies the defaults and validates every prop. Throws one error that lists every problem, each
 * naming the prop and what to change.
 */
export function resolveKeyRotationMemberProps(
  props: KeyRotationMemberProps,
): ResolvedKeyRotationMemberConfig {
  const problems: string[] = [];
  const input = (props ?? {}) as unknown as Record<string, unknown>;
  for (const name of Object.keys(input)) {
    if ((MEMBER_PROPS as readonly string[]).includes(name)) continue;
    const likely = likelyName(name, MEMBER_PROPS);
    problems.push(
      likely
        ? `${name} is not a KeyRotationMember prop: did you mean ${likely}?`
        : `${name} is not a KeyRotationMember prop; the props are ${MEMBER_PROPS.join(', ')}`,
    );
  }
  const {
    centralAccountId,
    centralRoleArns,
    operatorRoleArns = [],
    organizationId,
    memberRoleName = KEY_ROTATION_MEMBER_DEFAULTS.memberRoleName,
    secretPrefix = KEY_ROTATION_MEMBER_DEFAULTS.secretPrefix,
    includePaths = DEFAULT_SETTINGS.includePaths,
    excludePaths = DEFAULT_SETTINGS.excludePaths,
    keyAliasName = KEY_ROTATION_MEMBER_DEFAULTS.keyAliasName,
    permissionsBoundaryArn,
  } = props ?? ({} as KeyRotationMemberProps);

  const accountToken = typeof centralAccountId === 'string' && Token.isUnresolved(centralAccountId);
  const accountValid = typeof centralAccountId === 'string' && ACCOUNT_ID.test(centralAccountId);
  if (!accountValid && !accountToken) {
    problems.push(
      `centralAccountId must be the 12-digit id of the central deployment's account, such as "111122223333" (got ${describe(centralAccountId)})`,
    );
  }
  const checkedAccount = accountValid ? centralAccountId : undefined;
  if (isListToken(centralRoleArns)) {
    // A list token (a CommaDelimitedList parameter): its values are known at deployment only.
  } else if (!Array.isArray(centralRoleArns) || centralRoleArns.length === 0) {
    problems.push(
      `centralRoleArns must list the central planner's and rotator's role ARNs, such as ["arn:aws:iam::111122223333:role/KeyRotation-PlannerRole"] (got ${describe(centralRoleArns)})`,
    );
  } else {
    checkRoleArns('centralRoleArns', centralRoleArns, checkedAccount, problems);
  }
  if (isListToken(operatorRoleArns)) {
    // As above; "none" or an empty value means no operator role (a template condition).
  } else if (!Array.isArray(operatorRoleArns)) {
    problems.push(
      `operatorRoleArns must be a list of role ARNs of the central account, such as ["arn:aws:iam::111122223333:role/secrets-admin"], or [] (got ${describe(operatorRoleArns)})`,
    );
  } else {
    checkRoleArns('operatorRoleArns', operatorRoleArns, checkedAccount, problems);
    if (Array.isArray(centralRoleArns) && !isListToken(centralRoleArns)) {
      for (const arn of operatorRoleArns.filter((a) => centralRoleArns.includes(a))) {
        problems.push(
          `operatorRoleArns entry ${describe(arn)} is also in centralRoleArns: a role is either a central function's (as the service) or an operator's`,
        );
      }
    }
  }
  if (typeof organizationId !== 'string' || !ORGANIZATION_ID.test(organizationId)) {
    problems.push(
      `organizationId must be an AWS Organizations id: "o-" followed by 10 to 32 lowercase letters or digits, such as "o-a1b2c3d4e5" (got ${describe(organizationId)})`,
    );
  }
  if (typeof memberRoleName !== 'string' || !ROLE_NAME.test(memberRoleName)) {
    problems.push(
      `memberRoleName must be an IAM role name (1-64 letters, digits or +=,.@_-) (got ${describe(memberRoleName)})`,
    );
  }
  const prefixProblem = secretPrefixProblem(secretPrefix);
  if (prefixProblem) problems.push(prefixProblem);
  try {
    resolveSettings({ includePaths, excludePaths });
  } catch (error) {
    const listed = (error as { problems?: unknown }).problems;
    if (Array.isArray(listed)) problems.push(...listed.map(String));
    else problems.push(error instanceof Error ? error.message : String(error));
  }
  if (
    typeof keyAliasName !== 'string' ||
    !KEY_ALIAS.test(keyAliasName) ||
    keyAliasName.startsWith('alias/aws/')
  ) {
    problems.push(
      `keyAliasName must be "alias/" followed by 1-250 letters, digits or /_-, not under "alias/aws/" (got ${describe(keyAliasName)})`,
    );
  }
  if (
    permissionsBoundaryArn !== undefined &&
    (typeof permissionsBoundaryArn !== 'string' || !POLICY_ARN.test(permissionsBoundaryArn))
  ) {
    problems.push(
      `permissionsBoundaryArn must be the ARN of a managed policy, such as "arn:aws:iam::111122223333:policy/boundary" (got ${describe(permissionsBoundaryArn)})`,
    );
  }
  if (problems.length > 0) {
    throw new Error(`KeyRotationMember: invalid props:\n- ${problems.join('\n- ')}`);
  }
  return {
    centralAccountId,
    centralRoleArns: [...centralRoleArns],
    operatorRoleArns: [...operatorRoleArns],
    organizationId,
    memberRoleName,
    secretPrefix,
    includePaths: [...includePaths],
    excludePaths: [...excludePaths],
    keyAliasName,
    ...(permissionsBoundaryArn === undefined ? {} : { permissionsBoundaryArn }),
  };
}

/**
 * What one member account of the organization holds for the central deployment: the member role the
 * central planner and rotator assume, with exactly the IAM, Secrets Manager and KMS permissions they
 * use in an account, and the account's own KMS key for the secrets (which stay in the account, next
 * to the user). A plain stack for the management account (which a service-managed StackSet never
 * covers), and the StackSet's template for every other account.
 *
 * IAM roles are global: deploy it in one region per account, the central deployment's (the role's
 * secret permissions and the key are for that region).
 */
export class KeyRotationMember extends Construct {
  readonly config: ResolvedKeyRotationMemberConfig;
  /** The role the central functions assume, named `memberRoleName`. */
  readonly role: Role;
  /** The account's key for the secrets (rotated yearly, retained when the stack is deleted). */
  readonly secretsKey: Key;
  readonly secretsKeyAlias: Alias;
  /** The role's use of the key, a policy of its own: the key's policy names the role, so the role comes first. */
  readonly secretsKeyPolicy: Policy;

  constructor(scope: Construct, id: string, props: KeyRotationMemberProps) {
    super(scope, id);
    this.config = resolveKeyRotationMemberProps(props);
    const { config } = this;

    const permissionsBoundary: IManagedPolicy | undefined = config.permissionsBoundaryArn
      ? ManagedPolicy.fromManagedPolicyArn(this, 'PermissionsBoundary', config.permissionsBoundaryArn)
      : undefined;
    const role = new Role(this, 'Role', {
      roleName: config.memberRoleName,
      description: `iam-key-rotation member role: the central planner and rotator (account ${config.centralAccountId}) read IAM users and rotate their keys here`,
      // Replaced below by the trust policy (the central account, narrowed by aws:PrincipalArn).
      assumedBy: new AccountPrincipal(config.centralAccountId),
      maxSessionDuration: MEMBER_MAX_SESSION_DURATION,
      permissionsBoundary,
      inlinePolicies: this.policies(),
    });
    // The role's permissions are the statements above and the key policy below, nothing granted later.
    this.role = role;
    // Written whole: with a list token of operator roles, the document depends on a template
    // condition (Fn::If), which the L2 role's document cannot express.
    (role.node.defaultChild as CfnRole).assumeRolePolicyDocument = this.trustPolicy();

    this.secretsKey = new Key(this, 'SecretsKey', {
      description: 'iam-key-rotation: the secrets of this account',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // The central construct's pattern: any principal of the account decrypts through Secrets Manager,
    // and only secrets under the prefix, so that who reads which secret is decided by the secret's
    // resource policy alone (an IAM user reads its own secret).
    this.secretsKey.addToResourcePolicy(
      new PolicyStatement({
        sid: 'DecryptSecretsUnderPrefixThroughSecretsManager',
        principals: [new AnyPrincipal()],
        actions: ['kms:Decrypt'],
        resources: ['*'],
        conditions: this.throughSecretsManager({ 'kms:CallerAccount': Aws.ACCOUNT_ID }),
      }),
    );
    // The member role stores (GenerateDataKey) and reads (Decrypt) the secrets, through Secrets
    // Manager only. KMS refuses a key policy naming a role that does not exist yet: the key depends
    // on the role.
    this.secretsKey.addToResourcePolicy(
      new PolicyStatement({
        sid: 'MemberRoleUsesKeyThroughSecretsManager',
        principals: [new ArnPrincipal(role.roleArn)],
        actions: SECRETS_KEY_ACTIONS,
        resources: ['*'],
        conditions: this.throughSecretsManager(),
      }),
    );
    this.secretsKeyAlias = this.secretsKey.addAlias(config.keyAliasName);
    this.secretsKeyPolicy = new Policy(this, 'UseSecretsKey', {
      roles: [role],
      statements: [
        new PolicyStatement({
          actions: SECRETS_KEY_ACTIONS,
          resources: [this.secretsKey.keyArn],
          conditions: this.throughSecretsManager(),
        }),
      ],
    });

    // Plain output names (not hashed), the same in every account's stack instance.
    new CfnOutput(this, 'MemberRoleArn', {
      value: role.roleArn,
      description: 'The role the central iam-key-rotation functions assume in this account',
    }).overrideLogicalId(MEMBER_STACK_OUTPUT.roleArn);
    new CfnOutput(this, 'MemberKeyArn', {
      value: this.secretsKey.keyArn,
      description: "The KMS key of this account's iam-key-rotation secrets",
    }).overrideLogicalId(MEMBER_STACK_OUTPUT.keyArn);

    this.acknowledgeFindings();
  }

  /**
   * Who may assume the role. The principal is the central account; `aws:PrincipalArn` (compared as
   * an ARN, so a re-created role is trusted again and a role not created yet is no error) narrows it
   * to the listed roles, `aws:PrincipalOrgID` to the organization. The central functions assume the
   * role only as the service (`sts:SourceIdentity`); tagging the session is a statement of its own,
   * as in the central roles' policy. Operator roles have a statement without the source identity.
   */
  private trustPolicy(): PolicyDocument | IResolvable {
    const { centralAccountId, centralRoleArns, operatorRoleArns, organizationId } = this.config;
    const central = new ArnPrincipal(`arn:${Aws.PARTITION}:iam::${centralAccountId}:root`);
    const inOrganization = { 'aws:PrincipalOrgID': organizationId };
    const roles = (arns: readonly string[]) => ({ 'aws:PrincipalArn': [...arns] });
    const functions = (): PolicyStatement[] => [
      new PolicyStatement({
        sid: 'CentralFunctionsAssumeAsTheService',
        principals: [central],
        actions: MEMBER_TRUST_ACTIONS.filter((action) => action !== 'sts:TagSession'),
        conditions: {
          ArnEquals: roles(centralRoleArns),
          StringEquals: { ...inOrganization, 'sts:SourceIdentity': SERVICE_NAME },
        },
      }),
      new PolicyStatement({
        sid: 'CentralFunctionsTagSession',
        principals: [central],
        actions: ['sts:TagSession'],
        conditions: { ArnEquals: roles(centralRoleArns), StringEquals: inOrganization },
      }),
    ];
    const operators = (): PolicyStatement =>
      new PolicyStatement({
        sid: 'OperatorsAssume',
        principals: [central],
        actions: [...MEMBER_TRUST_ACTIONS],
        conditions: { ArnEquals: roles(operatorRoleArns), StringEquals: inOrganization },
      });
    if (!isListToken(operatorRoleArns)) {
      return new PolicyDocument({
        statements: [...functions(), ...(operatorRoleArns.length > 0 ? [operators()] : [])],
      });
    }
    const joined = Fn.join(',', [...operatorRoleArns]);
    const hasOperators = new CfnCondition(this, 'HasOperatorRoles', {
      expression: Fn.conditionNot(
        Fn.conditionOr(Fn.conditionEquals(joined, NO_OPERATOR_ROLES), Fn.conditionEquals(joined, '')),
      ),
    });
    return Fn.conditionIf(
      hasOperators.logicalId,
      new PolicyDocument({ statements: [...functions(), operators()] }),
      new PolicyDocument({ statements: functions() }),
    );
  }

  /** `arn:<partition>:secretsmanager:<region>:<account>:secret:<secretPrefix>/*`. */
  secretArnPattern(): string {
    return `arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${this.config.secretPrefix}/*`;
  }

  private throughSecretsManager(extra: Record<string, string> = {}): Record<string, Record<string, string>> {
    return {
      StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com`, ...extra },
      StringLike: { 'kms:EncryptionContext:SecretARN': this.secretArnPattern() },
    };
  }

  private userArns(paths: readonly string[]): string[] {
    return paths.map((userPath) => `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:user${userPath}*`);
  }

  /** The planner's and the rotator's statements of the central construct, in this account. */
  private policies(): Record<string, PolicyDocument> {
    const { includePaths, excludePaths } = this.config;
    const rotate = [
      new PolicyStatement({ actions: IAM_KEY_WRITE_ACTIONS, resources: this.userArns(includePaths) }),
    ];
    if (excludePaths.length > 0) {
      // Invariant I7: exempt paths are never modified, whatever the code does.
      rotate.push(
        new PolicyStatement({
          effect: Effect.DENY,
          actions: IAM_KEY_WRITE_ACTIONS,
          resources: this.userArns(excludePaths),
        }),
      );
    }
    return {
      ReadIamUsers: new PolicyDocument({
        statements: [
          new PolicyStatement({ actions: IAM_ACCOUNT_ACTIONS, resources: ['*'] }),
          new PolicyStatement({ actions: IAM_READ_ACTIONS, resources: this.userArns(includePaths) }),
        ],
      }),
      RotateAccessKeys: new PolicyDocument({ statements: rotate }),
      StoreSecrets: new PolicyDocument({
        statements: [
          new PolicyStatement({ actions: [...SECRETS_ACTIONS], resources: [this.secretArnPattern()] }),
        ],
      }),
    };
  }

  /** cdk-nag findings that are intended, acknowledged on the role with exact ids and reasons. */
  private acknowledgeFindings(): void {
    const role = this.role.node.defaultChild;
    const iam5 = (finding: string): string => `AwsSolutions-IAM5[${finding}]`;
    acknowledge(
      role,
      iam5('Resource::*'),
      'iam:GenerateCredentialReport, iam:GetCredentialReport and iam:ListUsers do not support resource-level permissions: the credential report and the user list cover the whole account.',
    );
    for (const userPath of this.config.includePaths) {
      acknowledge(
        role,
        iam5(`Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user${userPath}*`),
        `The central planner reads, and the rotator rotates, the keys of every IAM user of this account under includePaths (${this.config.includePaths.join(', ')}); users are not known at deploy time, so the user ARN ends in a wildcard after the path.`,
      );
    }
    acknowledge(
      role,
      iam5(
        `Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${this.config.secretPrefix}/*`,
      ),
      `One secret per user, named ${this.config.secretPrefix}/<accountId>/<userName>, created at run time; the role may touch only secrets under the prefix.`,
    );
  }
}

function acknowledge(scope: IConstruct | undefined, id: string, reason: string): void {
  if (!scope) throw new Error(`KeyRotationMember: nothing to acknowledge ${id} on`);
  Validations.of(scope).acknowledge({ id, reason });
}
