/**
 * The two ways the handlers reach a template produce the same code: NodejsFunction bundling from the
 * sources (this repository) and the package's prebuilt bundles (`npm run build`, scripts/build.mjs),
 * which the construct uses when they sit next to the compiled library.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { buildSync, version as esbuildVersion } from 'esbuild';
import { KeyRotationStack } from '../../lib/key-rotation-stack';
import type { KeyRotationProps } from '../../lib/constructs/key-rotation';
import * as bundling from '../../lib/constructs/bundling';

const PROJECT_ROOT = join(__dirname, '..', '..');
/** Where the test puts prebuilt bundles for the construct to find (undefined: the real location). */
let mockAssetsDir: string | undefined;
jest.mock('../../lib/constructs/bundling', () => {
  const actual = jest.requireActual<typeof bundling>('../../lib/constructs/bundling');
  return {
    ...actual,
    prebuiltHandlerCode: (name: bundling.HandlerName) =>
      actual.prebuiltHandlerCode(name, mockAssetsDir ?? actual.PREBUILT_ASSETS_DIR),
  };
});

/** What scripts/build.mjs does for each handler, into a fresh folder laid out as dist/assets/. */
function prebuild(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyrot-assets-'));
  for (const name of bundling.HANDLER_NAMES) {
    buildSync({
      ...bundling.handlerEsbuildOptions(bundling.handlerEntry(name), join(dir, name)),
      absWorkingDir: PROJECT_ROOT,
    });
  }
  return dir;
}

interface Synth {
  readonly stack: KeyRotationStack;
  readonly template: Template;
  readonly outdir: string;
}

function synth(rotation: KeyRotationProps = {}): Synth {
  const outdir = mkdtempSync(join(tmpdir(), 'keyrot-cdk-out-'));
  const app = new App({ outdir });
  const stack = new KeyRotationStack(app, 'Test', { rotation });
  app.synth();
  return { stack, template: Template.fromJSON(readJson(join(outdir, 'Test.template.json'))), outdir };
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** The bundled index.js of the function whose description starts with `prefix`, read from cdk.out. */
function functionCode({ template, outdir }: Synth, prefix: string): { handler: string; code: Buffer } {
  const fns = Object.values(template.findResources('AWS::Lambda::Function')).filter((r) =>
    String((r.Properties as { Description?: string }).Description).startsWith(prefix),
  );
  expect(fns).toHaveLength(1);
  const props = fns[0]!.Properties as { Handler: string; Code: { S3Key: string } };
  const hash = props.Code.S3Key.replace(/\.zip$/, '');
  return { handler: props.Handler, code: readFileSync(join(outdir, `asset.${hash}`, 'index.js')) };
}

const ORGANIZATION: KeyRotationProps = {
  organization: { organizationId: 'o-abcdefghij', includeOus: ['ou-abcd-11111111'] },
};

describe('handler bundles', () => {
  let assets: string;
  beforeAll(() => {
    assets = prebuild();
  });
  afterEach(() => {
    mockAssetsDir = undefined;
  });

  it('derives the build’s esbuild options from the construct’s bundling options and runtime', () => {
    const options = bundling.handlerEsbuildOptions('lambda/handlers/planner.ts', '/out/planner');
    expect(options).toEqual({
      entryPoints: ['lambda/handlers/planner.ts'],
      bundle: true,
      target: 'node24',
      platform: 'node',
      outfile: '/out/planner/index.js',
      minify: true,
      sourcemap: true,
      external: ['@aws-sdk/*'],
      logLevel: 'warning',
    });
    // NodejsFunction runs the esbuild of this repository (local bundling), the one the build imports.
    expect(readJson(require.resolve('esbuild/package.json')).version).toBe(esbuildVersion);
  });

  it('bundles each handler from source into the same code as the build', () => {
    const fromSource = synth(ORGANIZATION);
    for (const [prefix, name] of [
      ['iam-key-rotation: plans', 'planner'],
      ['iam-key-rotation: rotates', 'rotator'],
      ['iam-key-rotation: lists', 'dispatcher'],
    ] as const) {
      const { handler, code } = functionCode(fromSource, prefix);
      expect(handler).toBe('index.handler');
      expect(code.equals(readFileSync(join(assets, name, 'index.js')))).toBe(true);
    }
  });

  it('uses the prebuilt bundles when present, with the same template as from source', () => {
    const fromSource = synth();
    mockAssetsDir = assets;
    const prebuilt = synth();
    // Each asset is hashed by its content: the same bundle, the same S3 key; nothing else differs.
    expect(prebuilt.template.toJSON()).toEqual(fromSource.template.toJSON());
    expect(prebuilt.stack.rotation.planner).not.toBeInstanceOf(NodejsFunction);
    expect(prebuilt.stack.rotation.rotator).not.toBeInstanceOf(NodejsFunction);
    const planner = functionCode(prebuilt, 'iam-key-rotation: finds');
    expect(planner.code.equals(readFileSync(join(assets, 'planner', 'index.js')))).toBe(true);
  });

  it('bundles from source when no prebuilt bundle is there (this repository)', () => {
    mockAssetsDir = mkdtempSync(join(tmpdir(), 'keyrot-no-assets-'));
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const { rotation } = new KeyRotationStack(app, 'Test');
    expect(rotation.planner).toBeInstanceOf(NodejsFunction);
    expect(rotation.rotator).toBeInstanceOf(NodejsFunction);
    // The real location, next to the compiled library: absent when running from the sources.
    expect(bundling.PREBUILT_ASSETS_DIR).toBe(join(PROJECT_ROOT, 'assets'));
  });
});
