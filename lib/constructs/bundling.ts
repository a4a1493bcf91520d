import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Code, Runtime } from 'aws-cdk-lib/aws-lambda';
import { BundlingOptions, LogLevel } from 'aws-cdk-lib/aws-lambda-nodejs';

/**
 * How the Lambda handlers are bundled, in one place for both paths that produce them: NodejsFunction
 * when the construct runs from this repository's TypeScript sources, and `npm run build`
 * (scripts/build.mjs), which bundles them into the package's `dist/assets/<name>/` ahead of time so
 * that a consumer's synth needs neither esbuild nor the sources.
 */

/** The Lambda functions of the service, each bundled from `lambda/handlers/<name>.ts`. */
export const HANDLER_NAMES = ['planner', 'rotator', 'dispatcher'] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];

/** The handler's source, relative to the project root. */
export function handlerEntry(name: HandlerName): string {
  return path.join('lambda', 'handlers', `${name}.ts`);
}

/**
 * Pinned (not NODEJS_LATEST) so that a runtime change is a reviewed change; cdk-nag L1 flags it when
 * a newer Node.js runtime exists. Also the bundles' esbuild target.
 */
export const HANDLER_RUNTIME = Runtime.NODEJS_24_X;

/** NodejsFunction's bundling of every handler. */
export const HANDLER_BUNDLING = {
  minify: true,
  sourceMap: true,
  // The Node.js runtime provides the AWS SDK v3.
  externalModules: ['@aws-sdk/*'],
  logLevel: LogLevel.WARNING,
} as const satisfies BundlingOptions;

/** The subset of esbuild's BuildOptions that {@link handlerEsbuildOptions} sets. */
export interface HandlerEsbuildOptions {
  readonly entryPoints: string[];
  readonly bundle: true;
  readonly target: string;
  readonly platform: 'node';
  readonly outfile: string;
  readonly minify: boolean;
  readonly sourcemap: boolean;
  readonly external: string[];
  readonly logLevel: `${LogLevel}`;
}

/**
 * esbuild's options for one handler, as NodejsFunction passes {@link HANDLER_BUNDLING} to esbuild's
 * command line (aws-cdk-lib/aws-lambda-nodejs, `buildEsbuildArgs`): `--bundle <entry>
 * --target=node<version of the runtime> --platform=node --outfile=<dir>/index.js --minify --sourcemap
 * --external:@aws-sdk/* --log-level=warning`, no `--format` (esbuild's default for Node, CommonJS).
 */
export function handlerEsbuildOptions(entry: string, outdir: string): HandlerEsbuildOptions {
  const version = /^nodejs(\d+)/.exec(HANDLER_RUNTIME.name)?.[1];
  if (!version) throw new Error(`cannot read the Node.js version of runtime ${HANDLER_RUNTIME.name}`);
  return {
    entryPoints: [entry],
    bundle: true,
    target: `node${version}`,
    platform: 'node',
    outfile: path.join(outdir, 'index.js'),
    minify: HANDLER_BUNDLING.minify,
    sourcemap: HANDLER_BUNDLING.sourceMap,
    external: [...HANDLER_BUNDLING.externalModules],
    logLevel: HANDLER_BUNDLING.logLevel,
  };
}

/**
 * Where `npm run build` puts the bundled handlers, relative to the compiled construct
 * (`dist/lib/constructs/` → `dist/assets/`). From this repository's sources the folder does not exist.
 */
export const PREBUILT_ASSETS_DIR = path.join(__dirname, '..', '..', 'assets');

/** The prebuilt code of a handler when the package carries it; undefined when running from source. */
export function prebuiltHandlerCode(name: HandlerName, assetsDir = PREBUILT_ASSETS_DIR): Code | undefined {
  const dir = path.join(assetsDir, name);
  return existsSync(path.join(dir, 'index.js')) ? Code.fromAsset(dir) : undefined;
}
