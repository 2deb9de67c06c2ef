import { defineCollection } from 'astro:content';
import { glob } from 'astro/loaders';
import type { Loader } from 'astro/loaders';
import { relative } from 'node:path';
import outlineData from './data/outline.json';
import { checkLesson, formatLessonProblems, lessonSchema } from './lib/lesson-schema.ts';
import { checkOutline, lessonIdFromEntry, type Outline } from './lib/outline.ts';

const outline = outlineData as Outline;
const contentBase = './src/content/course';

const globLoader = glob({
  pattern: '**/*.mdx',
  base: contentBase,
  generateId: ({ entry }) => lessonIdFromEntry(entry),
});

/** The glob loader, plus checks that need the file name and the course outline. */
const courseLoader: Loader = {
  name: 'course-loader',
  load: async (context) => {
    const outlineProblems = checkOutline(outline);
    if (outlineProblems.length > 0) {
      throw new Error(`Invalid course outline src/data/outline.json:\n  - ${outlineProblems.join('\n  - ')}`);
    }
    await globLoader.load({
      ...context,
      parseData: async (props) => {
        const file = relative(process.cwd(), props.filePath ?? props.id);
        const entry = relative(contentBase, file);
        const problems = checkLesson(entry, props.data, outline);
        if (problems.length > 0) throw new Error(formatLessonProblems(file, problems));
        return context.parseData(props);
      },
    });
  },
};

export const collections = {
  course: defineCollection({ loader: courseLoader, schema: lessonSchema }),
};
