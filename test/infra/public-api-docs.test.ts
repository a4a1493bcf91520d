/**
 * The public API is documented (issue 11): every property of every exported interface in the files
 * a consumer reaches carries a TSDoc comment, every optional property (and every property of an
 * interface a props type takes as `Partial<...>`) says its `@default`, required props of a `*Props`
 * interface say they are required, and the `@default` of each prop with a default in code names the
 * value the code applies.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { DEFAULT_ORGANIZATION_SETTINGS } from '../../lambda/domain/organization';
import { DEFAULT_SETTINGS } from '../../lambda/domain/settings';
import { KEY_ROTATION_MEMBER_DEFAULTS } from '../../lib/constructs/key-rotation-member';
import { KEY_ROTATION_DEFAULTS } from '../../lib/constructs/key-rotation-props';

const ROOT = path.resolve(__dirname, '../..');

const PUBLIC_API_FILES = [
  'lib/constructs/key-rotation-props.ts',
  'lib/constructs/key-rotation-member.ts',
  'lib/key-rotation-member-stack.ts',
  'lib/key-rotation-stack.ts',
  'lib/constructs/member-stack-set.ts',
  'lambda/domain/settings.ts',
  'lambda/domain/organization.ts',
];

interface PropertyDoc {
  readonly file: string;
  readonly interfaceName: string;
  readonly name: string;
  readonly optional: boolean;
  /** The comment's text before its tags, trimmed; '' when there is no TSDoc comment. */
  readonly description: string;
  /** The text of the `@default` tag, or undefined when there is none. */
  readonly defaultTag?: string;
}

interface ExportedInterface {
  readonly file: string;
  readonly name: string;
  readonly properties: readonly PropertyDoc[];
  /** Names of the interfaces this one takes as `Partial<Name>` in its `extends` clause. */
  readonly partialOf: readonly string[];
}

function commentText(comment: string | ts.NodeArray<ts.JSDocComment> | undefined): string {
  if (comment === undefined) return '';
  if (typeof comment === 'string') return comment;
  return comment.map((part) => part.text).join('');
}

function isExported(node: ts.InterfaceDeclaration): boolean {
  return node.modifiers?.some((modifier) => modifier.kind === ts.SyntaxKind.ExportKeyword) ?? false;
}

/** The exported interfaces of one source text, with each property's TSDoc. */
function exportedInterfaces(file: string, text: string): ExportedInterface[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: ExportedInterface[] = [];
  for (const statement of source.statements) {
    if (!ts.isInterfaceDeclaration(statement) || !isExported(statement)) continue;
    const partialOf: string[] = [];
    for (const clause of statement.heritageClauses ?? []) {
      for (const type of clause.types) {
        const [argument] = type.typeArguments ?? [];
        if (type.expression.getText(source) === 'Partial' && argument && ts.isTypeReferenceNode(argument)) {
          partialOf.push(argument.typeName.getText(source));
        }
      }
    }
    const properties = statement.members.filter(ts.isPropertySignature).map((member) => {
      const docs = ts.getJSDocCommentsAndTags(member).filter(ts.isJSDoc);
      const description = docs
        .map((doc) => commentText(doc.comment))
        .join('\n')
        .trim();
      const defaultTag = docs.flatMap((doc) => doc.tags ?? []).find((tag) => tag.tagName.text === 'default');
      return {
        file,
        interfaceName: statement.name.text,
        name: member.name.getText(source),
        optional: member.questionToken !== undefined,
        description,
        ...(defaultTag ? { defaultTag: commentText(defaultTag.comment).trim() } : {}),
      };
    });
    found.push({ file, name: statement.name.text, properties, partialOf });
  }
  return found;
}

/** What is missing from the docs of the interfaces given, one line per problem. */
function documentationProblems(interfaces: readonly ExportedInterface[]): string[] {
  const defaulted = new Set(interfaces.flatMap((entry) => entry.partialOf));
  const problems: string[] = [];
  for (const entry of interfaces) {
    for (const property of entry.properties) {
      const where = `${property.file}: ${entry.name}.${property.name}`;
      if (property.description === '') {
        problems.push(`${where} has no TSDoc comment saying what it does`);
      }
      const needsDefault = property.optional || defaulted.has(entry.name);
      if (needsDefault && (property.defaultTag === undefined || property.defaultTag === '')) {
        problems.push(
          `${where} is optional${property.optional ? '' : ` (through Partial<${entry.name}>)`} but has no @default`,
        );
      }
      if (!needsDefault && entry.name.endsWith('Props') && !/\brequired\b/i.test(property.description)) {
        problems.push(`${where} is required but its TSDoc does not say so`);
      }
    }
  }
  return problems;
}

function readInterfaces(): ExportedInterface[] {
  return PUBLIC_API_FILES.flatMap((file) =>
    exportedInterfaces(file, fs.readFileSync(path.join(ROOT, file), 'utf8')),
  );
}

/** How a value is written in a `@default` tag: `'text'`, `5`, `true`, `['/']`, `[]`, `{}`. */
function literal(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    if (Object.keys(value).length === 0) return '{}';
    throw new Error(`no literal form for ${JSON.stringify(value)}`);
  }
  return String(value);
}

/** True when the `@default` text names the value (a number as a whole number, not a digit of one). */
function namesValue(defaultTag: string, value: unknown): boolean {
  if (typeof value === 'number') return new RegExp(`(^|[^\\d.])${value}([^\\d]|$)`).test(defaultTag);
  return defaultTag.includes(literal(value));
}

describe('public API documentation', () => {
  const interfaces = readInterfaces();
  const property = (interfaceName: string, name: string): PropertyDoc => {
    const found = interfaces
      .find((entry) => entry.name === interfaceName)
      ?.properties.find((candidate) => candidate.name === name);
    if (!found) throw new Error(`${interfaceName}.${name} not found`);
    return found;
  };

  it('reads the props types a consumer reaches', () => {
    const names = interfaces.map((entry) => entry.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'KeyRotationProps',
        'KeyRotationOrganizationProps',
        'KeyRotationMemberProps',
        'KeyRotationMemberStackProps',
        'KeyRotationStackProps',
        'MemberStackSetProps',
        'RotationSettings',
        'OrganizationSettings',
      ]),
    );
    expect(interfaces.find((entry) => entry.name === 'KeyRotationProps')?.partialOf).toEqual([
      'RotationSettings',
    ]);
    expect(interfaces.flatMap((entry) => entry.properties).length).toBeGreaterThan(60);
  });

  it('documents every property of every exported interface, with @default where optional', () => {
    expect(documentationProblems(interfaces)).toEqual([]);
  });

  it.each<[string, object]>([
    ['KeyRotationProps', KEY_ROTATION_DEFAULTS],
    ['RotationSettings', DEFAULT_SETTINGS],
    ['OrganizationSettings', DEFAULT_ORGANIZATION_SETTINGS],
    ['KeyRotationOrganizationProps', DEFAULT_ORGANIZATION_SETTINGS],
    ['KeyRotationMemberProps', KEY_ROTATION_MEMBER_DEFAULTS],
    [
      'KeyRotationMemberProps',
      { includePaths: DEFAULT_SETTINGS.includePaths, excludePaths: DEFAULT_SETTINGS.excludePaths },
    ],
  ])('%s: each @default names the value the code applies', (interfaceName, defaults) => {
    const wrong = Object.entries(defaults as Record<string, unknown>)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => ({ name, value, tag: property(interfaceName, name).defaultTag ?? '' }))
      .filter(({ tag, value }) => !namesValue(tag, value))
      .map(({ name, value, tag }) => `${interfaceName}.${name}: @default ${tag} (code: ${literal(value)})`);
    expect(wrong).toEqual([]);
  });

  it('names a default that is off in code as off', () => {
    expect(DEFAULT_SETTINGS.reapUnusedDays).toBeUndefined();
    expect(property('RotationSettings', 'reapUnusedDays').defaultTag).toMatch(/^- off\b/);
  });

  describe('the checker itself', () => {
    const check = (text: string): string[] => documentationProblems(exportedInterfaces('fixture.ts', text));

    it('passes documented props', () => {
      expect(
        check(`
          export interface FixtureProps {
            /** What it is. Required. */
            readonly name: string;
            /**
             * How many.
             * @default 3
             */
            readonly count?: number;
          }
          interface NotExported { readonly undocumented?: string }
        `),
      ).toEqual([]);
    });

    it('flags a property without TSDoc, an optional one without @default, an unmarked required one', () => {
      expect(
        check(`
          export interface FixtureProps {
            readonly bare: string;
            /** How many. */
            readonly count?: number;
            // A line comment is not TSDoc.
            readonly commented?: boolean;
          }
        `),
      ).toEqual([
        'fixture.ts: FixtureProps.bare has no TSDoc comment saying what it does',
        'fixture.ts: FixtureProps.bare is required but its TSDoc does not say so',
        'fixture.ts: FixtureProps.count is optional but has no @default',
        'fixture.ts: FixtureProps.commented has no TSDoc comment saying what it does',
        'fixture.ts: FixtureProps.commented is optional but has no @default',
      ]);
    });

    it('asks for @default on the props of an interface taken as Partial<...>', () => {
      expect(
        check(`
          export interface Settings {
            /** Days. */
            readonly days: number;
          }
          export interface FixtureProps extends Partial<Settings> {}
        `),
      ).toEqual(['fixture.ts: Settings.days is optional (through Partial<Settings>) but has no @default']);
    });

    it('tells a @default that does not name the value from one that does', () => {
      expect(namesValue('365 (one year)', 36)).toBe(false);
      expect(namesValue('RetentionDays.ONE_YEAR (365)', 365)).toBe(true);
      expect(namesValue("['/']", ['/'])).toBe(true);
      expect(namesValue("'UTC'", 'Europe/Paris')).toBe(false);
    });
  });
});
