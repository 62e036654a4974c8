/**
 * Reading and editing a project's stack file (deploy/stack.yml) with the `yaml` package's document
 * API, so an edit changes one value and keeps every comment, anchor and the layout.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { isMap, isScalar, parseDocument, type Document } from 'yaml';
import { AirtasksError, ExitCode, NotFoundError } from '../core/errors.js';
import { splitReference } from '../docker/images.js';

/** Service label that marks the services running the project image (scheduler, workers). */
export const COMPONENT_LABEL = 'io.airtasks.component';
export const QUEUE_LABEL = 'io.airtasks.queue';

export async function loadStackDocument(file: string): Promise<Document> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new NotFoundError(
      'file',
      file,
      `cannot read the stack file ${file} (${(err as NodeJS.ErrnoException).code}): run \`airtasks init\``,
      { cause: err },
    );
  }
  const doc = parseDocument(text, { merge: true });
  if (doc.errors.length > 0)
    throw new AirtasksError(`${file} is not valid YAML: ${doc.errors[0]!.message}`, ExitCode.USAGE);
  if (!isMap(doc.get('services')))
    throw new AirtasksError(`${file} has no services: section`, ExitCode.USAGE);
  return doc;
}

/** The plain value of the stack (merge keys and anchors resolved). */
export function stackValue(doc: Document): StackFile {
  return doc.toJS({ maxAliasCount: 1000 }) as StackFile;
}

export interface StackService {
  image?: string;
  command?: string[] | string;
  environment?: Record<string, unknown> | string[];
  secrets?: Array<string | { source: string }>;
  deploy?: {
    labels?: Record<string, string> | string[];
    replicas?: number;
    mode?: string;
    restart_policy?: unknown;
  };
  [key: string]: unknown;
}
export interface StackFile {
  services: Record<string, StackService>;
  secrets?: Record<string, { external?: boolean; file?: string; name?: string }>;
  [key: string]: unknown;
}

export function serviceLabels(s: StackService): Record<string, string> {
  const l = s.deploy?.labels;
  if (!l) return {};
  if (Array.isArray(l))
    return Object.fromEntries(l.map((kv) => [kv.split('=')[0] ?? '', kv.split('=').slice(1).join('=')]));
  return l;
}

/** Services that run the project image: marked with the component label, or using the image's repository. */
export function airtasksServices(stack: StackFile, imageRepository?: string): string[] {
  return Object.entries(stack.services)
    .filter(([, s]) => {
      if (serviceLabels(s)[COMPONENT_LABEL]) return true;
      return !!imageRepository && !!s.image && splitReference(s.image).repository === imageRepository;
    })
    .map(([name]) => name);
}

/** Sets the image of the named services, in place; returns the services changed. */
export function setServiceImages(doc: Document, services: string[], image: string): string[] {
  const changed: string[] = [];
  for (const name of services) {
    const node = doc.getIn(['services', name, 'image'], true);
    if (isScalar(node)) {
      if (node.value !== image) changed.push(name);
      node.value = image;
    } else {
      doc.setIn(['services', name, 'image'], image);
      changed.push(name);
    }
  }
  return changed;
}

export async function saveStackDocument(file: string, doc: Document): Promise<void> {
  await writeFile(file, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
}
