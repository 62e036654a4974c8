/**
 * The third-party images of the stack (postgres, rabbitmq, the proxy), settable per project in
 * airtasks.json's "images" (a registry mirror, an air-gapped cluster, or airtasks' own tests with
 * images built locally). The stack marks the service of each with the label `io.airtasks.image`;
 * `init` renders them into deploy/stack.yml, and `build` and `deploy` write the current ones there
 * (in place, comments kept), so the file always shows what is deployed.
 */
import { existsSync } from 'node:fs';
import type { Document } from 'yaml';
import { usageError } from '../core/errors.js';
import { CONFIG_FILE, type Project } from './config.js';
import {
  loadStackDocument,
  saveStackDocument,
  serviceLabels,
  setServiceImages,
  stackValue,
  type StackFile,
} from './stack-file.js';

export const IMAGE_KEYS = ['postgres', 'rabbitmq', 'proxy'] as const;
export type ImageKey = (typeof IMAGE_KEYS)[number];
export type StackImages = Record<ImageKey, string>;

/** The images the stack names by default: the official ones (their contracts are what the stack uses). */
export const DEFAULT_IMAGES: StackImages = {
  postgres: 'postgres:16-alpine',
  rabbitmq: 'rabbitmq:3.13-management-alpine',
  proxy: 'nginx:1.27-alpine',
};

/** Service label naming which entry of "images" the service runs. */
export const IMAGE_LABEL = 'io.airtasks.image';

// A reference as Docker takes it: [host[:port]/]path[:tag][@digest], no spaces or quotes.
const REFERENCE = /^[a-z0-9][a-z0-9._:/-]*(?:@sha256:[0-9a-f]{64})?$/i;

/** airtasks.json's "images" (only the keys it sets), or null when it has none; bad values: exit 2. */
export function projectStackImages(project: Project): Partial<StackImages> | null {
  const given = project.config.images;
  if (given === undefined) return null;
  const file = project.configFile ?? CONFIG_FILE;
  if (given === null || typeof given !== 'object' || Array.isArray(given))
    throw usageError(
      `"images" in ${file} must be an object, e.g. {"postgres": "${DEFAULT_IMAGES.postgres}"}`,
    );
  const out: Partial<StackImages> = {};
  for (const [key, value] of Object.entries(given as Record<string, unknown>)) {
    if (!(IMAGE_KEYS as readonly string[]).includes(key))
      throw usageError(`"images" in ${file} has "${key}": the keys are ${IMAGE_KEYS.join(', ')}`);
    if (typeof value !== 'string' || !REFERENCE.test(value))
      throw usageError(
        `"images.${key}" in ${file} must be an image reference (e.g. "${DEFAULT_IMAGES[key as ImageKey]}"), got ${JSON.stringify(value)}`,
      );
    out[key as ImageKey] = value;
  }
  return out;
}

/** Sets each labelled service's image from `images`, in place; returns the services changed. */
export function setStackImages(doc: Document, stack: StackFile, images: Partial<StackImages>): string[] {
  const changed: string[] = [];
  for (const [name, service] of Object.entries(stack.services)) {
    const key = serviceLabels(service ?? {})[IMAGE_LABEL] as ImageKey | undefined;
    const image = key ? images[key] : undefined;
    if (image) changed.push(...setServiceImages(doc, [name], image));
  }
  return changed;
}

/** Writes airtasks.json's "images" into the stack file (when it sets any); returns the services changed. */
export async function writeStackImages(project: Project, stackFile: string): Promise<string[]> {
  const images = projectStackImages(project);
  if (!images || !existsSync(stackFile)) return [];
  const doc = await loadStackDocument(stackFile);
  const changed = setStackImages(doc, stackValue(doc), images);
  if (changed.length > 0) await saveStackDocument(stackFile, doc);
  return changed;
}
