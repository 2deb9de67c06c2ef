import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tableOfContents, type Heading } from '../../../src/lib/toc.ts';

const h = (depth: number, text: string): Heading => ({ depth, slug: text.toLowerCase().replace(/\s+/g, '-'), text });

/** The tree as nested [text, children] pairs, easy to read in an assertion. */
function shape(headings: Heading[]): unknown {
  const walk = (entries: ReturnType<typeof tableOfContents>): unknown =>
    entries.map((e) => (e.children.length > 0 ? [e.text, walk(e.children)] : e.text));
  return walk(tableOfContents(headings));
}

test('h3 headings nest under the h2 before them, in page order', () => {
  assert.deepEqual(
    shape([h(2, 'One'), h(2, 'Two'), h(3, 'Two a'), h(3, 'Two b'), h(3, 'Two c'), h(2, 'Three')]),
    ['One', ['Two', ['Two a', 'Two b', 'Two c']], 'Three'],
  );
});

test('entries keep the slug and text Astro gives', () => {
  assert.deepEqual(tableOfContents([{ depth: 2, slug: 'zachem', text: 'Зачем?' }, { depth: 3, slug: 'okno', text: 'Окно' }]), [
    { slug: 'zachem', text: 'Зачем?', children: [{ slug: 'okno', text: 'Окно', children: [] }] },
  ]);
});

test('an h3 before any h2 is listed as a section of its own', () => {
  assert.deepEqual(shape([h(3, 'Intro'), h(3, 'Setup'), h(2, 'Main'), h(3, 'Detail')]), ['Intro', 'Setup', ['Main', ['Detail']]]);
});

test('h1 and h4–h6 are not listed, and an h4 does not end a section', () => {
  assert.deepEqual(
    shape([h(1, 'Title'), h(2, 'A'), h(4, 'A deep'), h(3, 'A one'), h(5, 'x'), h(6, 'y'), h(3, 'A two')]),
    [['A', ['A one', 'A two']]],
  );
});

test('no headings, or only ignored ones, give an empty table of contents', () => {
  assert.deepEqual(tableOfContents([]), []);
  assert.deepEqual(tableOfContents([h(1, 'Title'), h(4, 'Deep')]), []);
});
