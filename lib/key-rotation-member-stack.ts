import { CfnParameter, Stack, StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import {
  KeyRotationMember,
  KeyRotationMemberProps,
  NO_OPERATOR_ROLES,
} from './constructs/key-rotation-member';

/** Parameters of the member template: what only the central stack knows at deployment. */
export const MEMBER_TEMPLATE_PARAMETER = {
  /** The central deployment's account id. */
  centralAccountId: 'CentralAccountId',
  /** The central functions' roles the member role trusts as the service (CommaDelimitedList of role ARNs). */
  centralRoleArns: 'CentralRoleArns',
  /** The central roles operators assume the member role with (CommaDelimitedList; `none` for none). */
  operatorRoleArns: 'OperatorRoleArns',
} as const;

export { NO_OPERATOR_ROLES };

/** What the member template fixes at synth: every KeyRotationMember prop but the central account and roles. */
export type MemberTemplateProps = Omit<
  KeyRotationMemberProps,
  'centralAccountId' | 'centralRoleArns' | 'operatorRoleArns'
>;

/** Props of {@link KeyRotationMemberStack}: the stack's own props and the member template's. */
export interface KeyRotationMemberStackProps extends StackProps {
  /**
   * The member footprint's props fixed at synth (organization id, role name, secret prefix, user
   * paths, key alias, permissions boundary); the central account and role ARNs are the stack's
   * parameters. Required (`organizationId` at least).
   */
  readonly member: MemberTemplateProps;
}

/**
 * The member footprint as a stack of its own: KeyRotationMember with the central account and role
 * ARNs as parameters (the central account's id, and the central stack's `MemberTrustedRoleArns` and
 * `MemberOperatorRoleArns` outputs).
 * The StackSet's template body in organization mode, and the plain stack an operator deploys where a
 * service-managed StackSet never reaches: the management account (and the central account itself,
 * when it is one of the accounts covered).
 */
export class KeyRotationMemberStack extends Stack {
  readonly member: KeyRotationMember;

  constructor(scope: Construct, id: string, props: KeyRotationMemberStackProps) {
    super(scope, id, {
      description:
        'iam-key-rotation member footprint: the role the central functions assume, and the KMS key of this account for secrets',
      ...props,
    });
    const centralAccountId = new CfnParameter(this, MEMBER_TEMPLATE_PARAMETER.centralAccountId, {
      type: 'String',
      allowedPattern: '^\\d{12}$',
      description: 'The account of the central iam-key-rotation deployment',
    });
    centralAccountId.overrideLogicalId(MEMBER_TEMPLATE_PARAMETER.centralAccountId);
    const centralRoleArns = new CfnParameter(this, MEMBER_TEMPLATE_PARAMETER.centralRoleArns, {
      type: 'CommaDelimitedList',
      description:
        "ARNs of the central functions' roles (planner, rotator) that may assume the member role as the service",
    });
    centralRoleArns.overrideLogicalId(MEMBER_TEMPLATE_PARAMETER.centralRoleArns);
    // A default rather than an empty value: StackSets refuse a parameter whose value is empty.
    const operatorRoleArns = new CfnParameter(this, MEMBER_TEMPLATE_PARAMETER.operatorRoleArns, {
      type: 'CommaDelimitedList',
      default: NO_OPERATOR_ROLES,
      description: `ARNs of the central roles operators assume the member role with (the secret admin role, for keyrot --org), or ${NO_OPERATOR_ROLES}`,
    });
    operatorRoleArns.overrideLogicalId(MEMBER_TEMPLATE_PARAMETER.operatorRoleArns);
    this.member = new KeyRotationMember(this, 'KeyRotationMember', {
      ...props.member,
      centralAccountId: centralAccountId.valueAsString,
      centralRoleArns: centralRoleArns.valueAsList,
      operatorRoleArns: operatorRoleArns.valueAsList,
    });
  }
}
