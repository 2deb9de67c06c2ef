/**
 * The course outline (modules and their lessons) and everything derived from it: lesson ids,
 * course order, prerequisite resolution and previous/next navigation.
 */
import type { Difficulty } from './format.ts';

/** A lesson of the full course as listed in the outline. */
export interface OutlineLesson {
  /** Course id `module-N/NN-slug`. */
  id: string;
  title: string;
  estimatedTime: number;
  difficulty: Difficulty;
}

/** A module of the course with its lessons in order. */
export interface OutlineModule {
  id: string;
  number: number;
  title: string;
  lessons: OutlineLesson[];
}

export interface Outline {
  title: string;
  modules: OutlineModule[];
}

/** A lesson of the outline, with whether this site has a page for it. */
export interface NavLesson extends OutlineLesson {
  moduleNumber: number;
  order: number;
  /** URL of the page on this site, or undefined when the lesson lives only in the full course. */
  href?: string;
}

/** A prerequisite shown on a lesson page. */
export type ResolvedPrerequisite =
  | { kind: 'page'; id: string; title: string; href: string }
  | { kind: 'course'; id: string; title: string; moduleTitle: string };

export const LESSON_ID = /^module-(\d+)\/(\d{2})-[a-z0-9]+(?:-[a-z0-9]+)*$/;
const ENTRY_PATH = /^(\d{2})-module-(\d+)\/(\d{2})-([a-z0-9]+(?:-[a-z0-9]+)*)\.mdx$/;

/**
 * The course id of a lesson file: `05-module-5/07-feature-engineering.mdx` → `module-5/07-feature-engineering`.
 * Throws when the path does not follow `NN-module-N/NN-slug.mdx`.
 */
export function lessonIdFromEntry(entry: string): string {
  const match = ENTRY_PATH.exec(entry.replace(/\\/g, '/'));
  if (!match) {
    throw new Error(
      `${entry}: a lesson file must be named NN-module-N/NN-slug.mdx (e.g. 05-module-5/07-feature-engineering.mdx)`,
    );
  }
  const [, dirNumber, moduleNumber, order, slug] = match;
  if (Number(dirNumber) !== Number(moduleNumber)) {
    throw new Error(`${entry}: folder number ${dirNumber} does not match module-${moduleNumber}`);
  }
  return `module-${moduleNumber}/${order}-${slug}`;
}

/** The position of a lesson within its module, from its id (`module-5/07-…` → 7). */
export function lessonOrder(id: string): number {
  const match = LESSON_ID.exec(id);
  if (!match) throw new Error(`not a lesson id: ${id} (expected module-N/NN-slug)`);
  return Number(match[2]);
}

/** The module number of a lesson id (`module-5/07-…` → 5). */
export function lessonModule(id: string): number {
  const match = LESSON_ID.exec(id);
  if (!match) throw new Error(`not a lesson id: ${id} (expected module-N/NN-slug)`);
  return Number(match[1]);
}

/** The URL of a lesson page on this site. */
export function lessonHref(id: string): string {
  return `/course/${id}/`;
}

/** Compare two lesson ids in course order: module first, then order within the module. */
export function compareLessonIds(a: string, b: string): number {
  return lessonModule(a) - lessonModule(b) || lessonOrder(a) - lessonOrder(b) || a.localeCompare(b);
}

/** Every lesson of the outline in course order, with links for those that are pages here. */
export function courseLessons(outline: Outline, pageIds: ReadonlySet<string>): NavLesson[] {
  const lessons: NavLesson[] = [];
  for (const module of outline.modules) {
    for (const lesson of module.lessons) {
      lessons.push({
        ...lesson,
        moduleNumber: module.number,
        order: lessonOrder(lesson.id),
        href: pageIds.has(lesson.id) ? lessonHref(lesson.id) : undefined,
      });
    }
  }
  return lessons.sort((a, b) => compareLessonIds(a.id, b.id));
}

/** Problems of the outline itself: malformed or duplicate ids, lessons filed under the wrong module. */
export function checkOutline(outline: Outline): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const module of outline.modules) {
    if (module.id !== `module-${module.number}`) problems.push(`module ${module.id} must have id module-${module.number}`);
    for (const lesson of module.lessons) {
      if (!LESSON_ID.test(lesson.id)) {
        problems.push(`lesson id ${lesson.id} is not module-N/NN-slug`);
        continue;
      }
      if (lessonModule(lesson.id) !== module.number) problems.push(`lesson ${lesson.id} is listed under ${module.id}`);
      if (seen.has(lesson.id)) problems.push(`lesson ${lesson.id} is listed twice`);
      seen.add(lesson.id);
    }
  }
  return problems;
}

/** The outline lesson id closest to a mistyped one (same module preferred), for error hints. */
export function closestLessonId(outline: Outline, id: string): string | undefined {
  let best: { id: string; distance: number } | undefined;
  for (const module of outline.modules) {
    for (const lesson of module.lessons) {
      const distance = editDistance(id, lesson.id);
      if (!best || distance < best.distance) best = { id: lesson.id, distance };
    }
  }
  return best && best.distance <= Math.max(3, Math.floor(id.length / 3)) ? best.id : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const current = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length];
}

/**
 * Resolve a prerequisite id: a page on this site becomes a link; a lesson of the full course is
 * shown by its title. Throws naming the id (and the closest known id) when the outline lacks it.
 */
export function resolvePrerequisite(
  outline: Outline,
  id: string,
  pageIds: ReadonlySet<string>,
): ResolvedPrerequisite {
  for (const module of outline.modules) {
    const lesson = module.lessons.find((l) => l.id === id);
    if (!lesson) continue;
    if (pageIds.has(id)) return { kind: 'page', id, title: lesson.title, href: lessonHref(id) };
    return { kind: 'course', id, title: lesson.title, moduleTitle: `Модуль ${module.number}. ${module.title}` };
  }
  const hint = closestLessonId(outline, id);
  throw new Error(
    `unknown prerequisite "${id}": it is not in the course outline (src/data/outline.json)` +
      (hint ? `; did you mean "${hint}"?` : '; add the lesson to the outline or fix the id'),
  );
}

/** The lessons before and after a lesson in course order (any of them may be a full-course lesson). */
export function previousNext(
  outline: Outline,
  id: string,
  pageIds: ReadonlySet<string>,
): { previous?: NavLesson; next?: NavLesson } {
  const lessons = courseLessons(outline, pageIds);
  const index = lessons.findIndex((l) => l.id === id);
  if (index === -1) throw new Error(`lesson ${id} is not in the course outline (src/data/outline.json)`);
  return { previous: lessons[index - 1], next: lessons[index + 1] };
}
