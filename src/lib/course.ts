/** The course as the pages see it: the outline plus the lessons that are pages on this site. */
import { getCollection, type CollectionEntry } from 'astro:content';
import outlineData from '../data/outline.json';
import { compareLessonIds, courseLessons, type NavLesson, type Outline } from './outline.ts';

export const outline = outlineData as Outline;

/** Lesson pages of this site in course order. */
export async function lessonEntries(): Promise<CollectionEntry<'course'>[]> {
  const entries = await getCollection('course');
  return entries.sort((a, b) => compareLessonIds(a.id, b.id));
}

/** Every lesson of the course outline, linked when it is a page here. */
export async function navLessons(): Promise<NavLesson[]> {
  const entries = await lessonEntries();
  const pageIds = new Set(entries.map((e) => e.id));
  const missing = entries.filter((e) => !outline.modules.some((m) => m.lessons.some((l) => l.id === e.id)));
  if (missing.length > 0) {
    throw new Error(`lesson(s) ${missing.map((e) => e.id).join(', ')} missing from src/data/outline.json: add them`);
  }
  return courseLessons(outline, pageIds);
}
