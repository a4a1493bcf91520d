/**
 * cdk-nag (AwsSolutions, v3 validation plugin) over the whole app, bundled as `cdk synth` does:
 * zero unacknowledged findings, every acknowledgement with a written reason, and no acknowledgement
 * that hides nothing (a stale one would silently accept a future finding).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, CfnResource, Stack, Validations } from 'aws-cdk-lib';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import type { KeyRotationProps } from '../../lib/constructs/key-rotation';
import { KeyRotationStack } from '../../lib/key-rotation-stack';

/** Several include and exclude paths, so that every per-path acknowledgement is exercised. */
const PROPS: KeyRotationProps = {
  includePaths: ['/', '/service/'],
  excludePaths: ['/break-glass/'],
  secretPrefix: 'acme/keys',
  defaultRecipients: ['security@example.com'],
  opsRecipients: ['ops@example.com'],
  secretAdminRoleArn: 'arn:aws:iam::123456789012:role/secrets-admin',
};

interface Finding {
  readonly ruleId: string;
  readonly path: string;
}
interface Acknowledgement extends Finding {
  readonly reason: string;
}

function buildApp(outdir: string, context: Record<string, unknown> = {}): App {
  const app = new App({ outdir, context });
  new KeyRotationStack(app, 'Nag', { rotation: PROPS });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

/** What AwsSolutions reports when nothing is acknowledged. */
function rawFindings(scope: IConstruct): Finding[] {
  const pack = new AwsSolutionsChecks();
  // isAcknowledged is the pack's private filter; switched off here to see every finding.
  (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
  return pack
    .validateScope(scope)
    .violations.flatMap((v) =>
      v.violatingResources.map((r) => ({ ruleId: v.ruleName, path: r.constructPath ?? '' })),
    );
}

function acknowledgements(scope: IConstruct): Acknowledgement[] {
  return scope.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          ruleId: id.replace(/^annotation::/i, ''),
          path: construct.node.path,
          reason,
        })),
      ),
  );
}

const covers = (ack: Finding, finding: Finding): boolean =>
  ack.ruleId === finding.ruleId && (finding.path === ack.path || finding.path.startsWith(`${ack.path}/`));

describe('cdk-nag AwsSolutions', () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'key-rotation-nag-'));
  let app: App;
  let assembly: CloudAssembly;

  beforeAll(() => {
    app = buildApp(outdir);
    // Throws with the report if any finding is not acknowledged (the CDK fails in-memory synths).
    assembly = app.synth();
  });
  afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

  test('the synthesized validation report has no violation', () => {
    const report = JSON.parse(
      fs.readFileSync(path.join(assembly.directory, 'validation-report.json'), 'utf8'),
    ) as { pluginReports: { violations?: unknown[] }[] };
    expect(report.pluginReports.flatMap((r) => r.violations ?? [])).toEqual([]);
  });

  test('the pack, run directly, reports zero unacknowledged findings', () => {
    expect(new AwsSolutionsChecks().validateScope(app).violations).toEqual([]);
  });

  test('every acknowledgement has a specific written reason', () => {
    const acks = acknowledgements(app);
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect(ack.reason.trim().length).toBeGreaterThanOrEqual(40);
    }
  });

  test('every acknowledgement hides a real finding on its construct, and every finding is acknowledged', () => {
    const findings = rawFindings(app);
    const acks = acknowledgements(app);
    expect(findings.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect({ ack, used: findings.some((finding) => covers(ack, finding)) }).toEqual({ ack, used: true });
    }
    for (const finding of findings) {
      expect({ finding, acknowledged: acks.some((ack) => covers(ack, finding)) }).toEqual({
        finding,
        acknowledged: true,
      });
    }
  });

  test('the acknowledged findings are exactly the intended wildcards', () => {
    const planner = Stack.of(app.node.findAll().find((c) => c.node.path === 'Nag/KeyRotation/Planner')!);
    const plannerId = planner.getLogicalId(
      app.node.findAll().find((c) => c.node.path === 'Nag/KeyRotation/Planner/Resource') as CfnResource,
    );
    const user = (p: string) =>
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user${p}*]`;
    const expected = [
      ['Nag/KeyRotation/PlannerRole/Resource', 'AwsSolutions-IAM5[Resource::*]'],
      ['Nag/KeyRotation/PlannerRole/Resource', user('/')],
      ['Nag/KeyRotation/PlannerRole/Resource', user('/service/')],
      ['Nag/KeyRotation/PlannerRole/DefaultPolicy/Resource', 'AwsSolutions-IAM5[Resource::*]'],
      ['Nag/KeyRotation/RotatorRole/Resource', user('/')],
      ['Nag/KeyRotation/RotatorRole/Resource', user('/service/')],
      [
        'Nag/KeyRotation/RotatorRole/Resource',
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:acme/keys/*]',
      ],
      [
        'Nag/KeyRotation/RotatorRole/Resource',
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:acme-keys-owner-6f8ff7-*]',
      ],
      ['Nag/KeyRotation/RotatorRole/DefaultPolicy/Resource', 'AwsSolutions-IAM5[Resource::*]'],
      // The schedule's dead-letter queue is a DLQ that cdk-nag does not recognise as one.
      ['Nag/KeyRotation/ScheduleDeadLetterQueue/Resource', 'AwsSolutions-SQS3'],
      [
        'Nag/KeyRotation/SchedulerRole/DefaultPolicy/Resource',
        `AwsSolutions-IAM5[Resource::<${plannerId}.Arn>:*]`,
      ],
    ];
    expect(
      acknowledgements(app)
        .map((a) => [a.path, a.ruleId])
        .sort(),
    ).toEqual(expected.sort());
  });

  test('without the acknowledgements, synth fails with the findings', () => {
    const spy = jest.spyOn(Validations.prototype, 'acknowledge').mockImplementation(() => undefined);
    const unbundled = fs.mkdtempSync(path.join(os.tmpdir(), 'key-rotation-nag-'));
    try {
      const bare = buildApp(unbundled, { 'aws:cdk:bundling-stacks': [] });
      expect(() => bare.synth()).toThrow(/AwsSolutions-IAM5\[Resource::\*\]/);
    } finally {
      spy.mockRestore();
      fs.rmSync(unbundled, { recursive: true, force: true });
    }
  });

  test('both handlers are bundled minified with a source map, the AWS SDK left to the runtime', () => {
    const template = assembly.getStackByName('Nag').template as {
      Resources: Record<string, { Type: string; Properties: { Code?: { S3Key?: string } } }>;
    };
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions).toHaveLength(2);
    for (const fn of functions) {
      const hash = fn.Properties.Code?.S3Key?.replace(/\.zip$/, '');
      const dir = path.join(assembly.directory, `asset.${hash}`);
      expect(fs.readdirSync(dir).sort()).toEqual(['index.js', 'index.js.map']);
      const code = fs.readFileSync(path.join(dir, 'index.js'), 'utf8');
      expect(code).toMatch(/sourceMappingURL=index\.js\.map/);
      // Minified: a handful of very long lines.
      expect(code.split('\n').length).toBeLessThan(50);
      // The SDK clients are required from the runtime, not bundled (a bundled SDK weighs megabytes).
      expect(code).toContain('require("@aws-sdk/client-iam")');
      expect(code.length).toBeLessThan(500_000);
    }
  });
});
