/** The table of contents of a lesson page: its sections (h2) with their subsections (h3). */

/** A heading of a rendered lesson, as Astro's `render()` lists it. */
export interface Heading {
  depth: number;
  slug: string;
  text: string;
}

/** An entry of the table of contents; a section's subsections are its children. */
export interface TocEntry {
  slug: string;
  text: string;
  children: TocEntry[];
}

/**
 * Build the table of contents from a page's headings, in page order: every h2 is a section and
 * every h3 a subsection of the h2 before it. An h3 before the first h2 is listed as a section of
 * its own, so no h3 is lost; h1 and h4–h6 are not listed.
 */
export function tableOfContents(headings: readonly Heading[]): TocEntry[] {
  const toc: TocEntry[] = [];
  let section: TocEntry | undefined;
  for (const { depth, slug, text } of headings) {
    if (depth === 2) {
      section = { slug, text, children: [] };
      toc.push(section);
    } else if (depth === 3) {
      const entry: TocEntry = { slug, text, children: [] };
      if (section) section.children.push(entry);
      else toc.push(entry);
    }
  }
  return toc;
}
