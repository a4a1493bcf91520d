#!/usr/bin/env bash
# The consumer test: the package as a platform team installs it. Builds and packs it, then in a fresh
# folder outside the repository installs only aws-cdk-lib, constructs, aws-cdk (this repository's
# versions) and the tarball, synthesizes a ten-line CDK app using KeyRotation, checks that the template
# holds the functions with their bundled code, and runs the installed `keyrot`. Reuses the npm cache
# (--prefer-offline); reaches nothing but the npm registry. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/keyrot-consumer-XXXXXX")
trap 'rm -rf "$work"' EXIT

npm run --silent build
# `npm pack --json` describes the tarball: name, size, files. The build above is the one prepack runs.
pack=$(npm pack --silent --json --ignore-scripts --pack-destination "$work")
tarball=$work/$(node -e 'const [p] = JSON.parse(process.argv[1]); process.stdout.write(p.filename)' "$pack")
node -e '
  const [p] = JSON.parse(process.argv[1]);
  console.log(`consumer test: ${p.filename}: ${(p.size / 1024).toFixed(1)} kB packed, ${(p.unpackedSize / 1024).toFixed(1)} kB unpacked, ${p.entryCount} files`);
' "$pack"

version() { node -p "require('$repo/node_modules/$1/package.json').version"; }
app=$work/app
mkdir -p "$app/bin"
cd "$app"
npm init -y >/dev/null
npm install --prefer-offline --no-audit --no-fund --loglevel=error \
  "aws-cdk-lib@$(version aws-cdk-lib)" "constructs@$(version constructs)" "aws-cdk@$(version aws-cdk)" "$tarball"

cat >bin/app.js <<'EOF'
const { App, Stack } = require('aws-cdk-lib');
const { KeyRotation } = require('iam-key-rotation');

const app = new App();
const stack = new Stack(app, 'Consumer');
new KeyRotation(stack, 'Rotation', {
  rotateAfterDays: 80,
  defaultRecipients: ['security@example.com'],
});
app.synth();
EOF
echo '{ "app": "node bin/app.js" }' >cdk.json
npx cdk synth --no-notices --quiet

# The template holds the planner and the rotator, each with its bundled code staged in cdk.out.
node - <<'EOF'
const { existsSync, readFileSync, statSync } = require('node:fs');
const template = JSON.parse(readFileSync('cdk.out/Consumer.template.json', 'utf8'));
const assets = JSON.parse(readFileSync('cdk.out/Consumer.assets.json', 'utf8')).files;
const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
const problems = [];
for (const [name, prefix] of [['planner', 'iam-key-rotation: finds'], ['rotator', 'iam-key-rotation: rotates']]) {
  const found = functions.filter((f) => String(f.Properties.Description).startsWith(prefix));
  if (found.length !== 1) { problems.push(`${name}: ${found.length} functions`); continue; }
  const { Code, Handler, Runtime } = found[0].Properties;
  const hash = String(Code?.S3Key ?? '').replace(/\.zip$/, '');
  const asset = assets[hash];
  const file = `cdk.out/${asset?.source.path}/index.js`;
  if (Handler !== 'index.handler' || !/^nodejs\d+\.x$/.test(Runtime)) problems.push(`${name}: ${Handler} on ${Runtime}`);
  if (!asset || asset.source.packaging !== 'zip' || !existsSync(file)) problems.push(`${name}: no code asset ${hash}`);
  else if (!readFileSync(file, 'utf8').includes('exports')) problems.push(`${name}: ${file} is not a bundle`);
  else console.log(`consumer test: ${name}: asset ${hash.slice(0, 12)}, index.js ${statSync(file).size} bytes`);
}
if (problems.length) { console.error(`consumer test: ${problems.join('; ')}`); process.exit(1); }
EOF

# The CLI from the installed package: compiled JavaScript, no tsx.
for args in '--help' 'plan --help'; do
  # shellcheck disable=SC2086
  out=$(npx keyrot $args)
  case $out in
    keyrot*) echo "consumer test: keyrot $args: ok ($(wc -l <<<"$out") lines)" ;;
    *) echo "consumer test: keyrot $args printed: $out" >&2 && exit 1 ;;
  esac
done
if [ -e node_modules/tsx ]; then echo 'consumer test: tsx was installed' >&2 && exit 1; fi
echo "consumer test: passed in $((SECONDS - start)) s"
