/**
 * The frontmatter schema of a course lesson and the checks that need the file name or the
 * course outline. Every message names the field and says how to fix it.
 */
import { z } from 'zod';
import { difficulties } from './format.ts';
import { LESSON_ID, lessonIdFromEntry, lessonOrder, resolvePrerequisite, type Outline } from './outline.ts';

const nonEmpty = (field: string, example: string) =>
  z
    .string({ error: `${field} must be a string, e.g. ${field}: ${example}` })
    .trim()
    .min(1, { error: `${field} must not be empty, e.g. ${field}: ${example}` });

const positiveInt = (field: string, example: string) =>
  z
    .number({ error: `${field} must be a number, e.g. ${field}: ${example}` })
    .int({ error: `${field} must be a whole number, e.g. ${field}: ${example}` })
    .positive({ error: `${field} must be positive, e.g. ${field}: ${example}` });

/** Frontmatter of a lesson. */
export const lessonSchema = z.strictObject(
  {
    title: nonEmpty('title', '"Real-time Feature Engineering для ML"'),
    description: nonEmpty('description', '"Вычисление ML-признаков из CDC событий в реальном времени"'),
    order: positiveInt('order', '7 (the NN- prefix of the file name)'),
    difficulty: z.enum(difficulties, {
      error: `difficulty must be one of ${difficulties.join(', ')}, e.g. difficulty: "advanced"`,
    }),
    estimatedTime: positiveInt('estimatedTime', '50 (minutes)'),
    topics: z
      .array(nonEmpty('topics[]', '["PySpark"]'), { error: 'topics must be a list, e.g. topics: ["PySpark"]' })
      .min(1, { error: 'topics must list at least one topic, e.g. topics: ["PySpark"]' }),
    prerequisites: z.array(
      z.string().regex(LESSON_ID, {
        error: 'each prerequisite must be a lesson id module-N/NN-slug, e.g. "module-5/06-etl-elt-patterns"',
      }),
      { error: 'prerequisites must be a list of lesson ids, e.g. prerequisites: ["module-5/06-etl-elt-patterns"]' },
    ),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}: remove them or fix the spelling` : undefined) },
);

export type LessonFrontmatter = z.output<typeof lessonSchema>;

/** One problem of a lesson file: the field (empty for the whole file) and the message. */
export interface LessonProblem {
  field: string;
  message: string;
}

/**
 * Validate a lesson's frontmatter, its order against the file name and its prerequisites against
 * the outline. `entry` is the path under src/content/course (e.g. `05-module-5/07-feature-engineering.mdx`).
 */
export function checkLesson(entry: string, data: unknown, outline: Outline): LessonProblem[] {
  const problems: LessonProblem[] = [];
  let id: string | undefined;
  try {
    id = lessonIdFromEntry(entry);
  } catch (error) {
    problems.push({ field: '', message: (error as Error).message.replace(`${entry}: `, '') });
  }
  const parsed = lessonSchema.safeParse(data);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
      const missing = issue.code === 'invalid_type' && issue.input === undefined;
      problems.push({ field, message: missing ? `${field} is required: ${issue.message}` : issue.message });
    }
    return problems;
  }
  const lesson = parsed.data;
  if (id !== undefined && lessonOrder(id) !== lesson.order) {
    problems.push({
      field: 'order',
      message: `order is ${lesson.order} but the file name starts with ${String(lessonOrder(id)).padStart(2, '0')}-: set order: ${lessonOrder(id)} or rename the file`,
    });
  }
  for (const [index, prerequisite] of lesson.prerequisites.entries()) {
    if (prerequisite === id) {
      problems.push({ field: `prerequisites[${index}]`, message: 'a lesson cannot be its own prerequisite' });
      continue;
    }
    try {
      resolvePrerequisite(outline, prerequisite, new Set());
    } catch (error) {
      problems.push({ field: `prerequisites[${index}]`, message: (error as Error).message });
    }
  }
  return problems;
}

/** One human message for all problems of a lesson file. */
export function formatLessonProblems(file: string, problems: readonly LessonProblem[]): string {
  const lines = problems.map((p) => `  - ${p.field ? `${p.field}: ` : ''}${p.message}`);
  return `Invalid lesson ${file}:\n${lines.join('\n')}`;
}
