/** Russian labels and plurals shown on lesson pages. */

export const difficulties = ['beginner', 'intermediate', 'advanced'] as const;
export type Difficulty = (typeof difficulties)[number];

const difficultyLabels: Record<Difficulty, string> = {
  beginner: 'Начальный',
  intermediate: 'Средний',
  advanced: 'Продвинутый',
};

/** The Russian name of a difficulty level. */
export function difficultyLabel(difficulty: Difficulty): string {
  return difficultyLabels[difficulty];
}

/** Pick the Russian plural form for n: forms are [1 минута, 3 минуты, 5 минут]. */
export function pluralRu(n: number, forms: readonly [one: string, few: string, many: string]): string {
  const abs = Math.abs(Math.trunc(n));
  const lastTwo = abs % 100;
  const last = abs % 10;
  if (lastTwo >= 11 && lastTwo <= 14) return forms[2];
  if (last === 1) return forms[0];
  if (last >= 2 && last <= 4) return forms[1];
  return forms[2];
}

/** Reading time in Russian: «1 минута», «3 минуты», «50 минут». */
export function formatMinutes(minutes: number): string {
  return `${minutes} ${pluralRu(minutes, ['минута', 'минуты', 'минут'])}`;
}

/** Count of lessons in Russian: «1 урок», «2 урока», «7 уроков». */
export function formatLessons(count: number): string {
  return `${count} ${pluralRu(count, ['урок', 'урока', 'уроков'])}`;
}
