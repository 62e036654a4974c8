/**
 * The reference of the project image a DAG file runs in. `airtasks build --tag T` passes the image's
 * own reference (`<image>:T`) as the build argument AIRTASKS_IMAGE, which the scaffold's Dockerfile
 * keeps as an environment variable: docker tasks that run the project's own image then use the tag
 * that was built and deployed, never a `latest` the build did not make.
 */
export const IMAGE_ENV = 'AIRTASKS_IMAGE';

/** The image this code runs in (AIRTASKS_IMAGE), else `fallback` (e.g. on a machine without the image). */
export function projectImageRef(fallback: string): string {
  return process.env[IMAGE_ENV] || fallback;
}
