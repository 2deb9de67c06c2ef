/**
 * Code blocks of a lesson: a header with the file title and a copy button, and a visible note
 * for blocks marked `norun="<reason>"`. Works on the Markdown tree, before syntax highlighting.
 */
import type { Code, Root, RootContent } from 'mdast';
import type { MdxJsxFlowElement } from 'mdast-util-mdx-jsx';
import { parseFenceMeta, parseSourceRef } from './fence-meta.ts';

/** What the header of a code block shows. */
export interface CodeBlockInfo {
  /** File title: `title=` or the source's file name; undefined when neither is given. */
  title?: string;
  /** The reason the block is not runnable, when marked `norun`. */
  norun?: string;
  /** The repository file the block is copied from. */
  source?: string;
}

/** Read the title, norun reason and source from a code fence's meta. */
export function codeBlockInfo(meta: string | null | undefined): CodeBlockInfo {
  const attrs = parseFenceMeta(meta ?? '');
  const source = attrs.source ? parseSourceRef(attrs.source).path : undefined;
  const title = attrs.title ?? (source ? source.split('/').pop() : undefined);
  return { title: title || undefined, norun: attrs.norun?.trim() || undefined, source };
}

function element(
  name: string,
  className: string,
  children: MdxJsxFlowElement['children'],
  extra: Record<string, string> = {},
): MdxJsxFlowElement {
  const attributes = [{ type: 'mdxJsxAttribute' as const, name: 'class', value: className }];
  for (const [key, value] of Object.entries(extra)) attributes.push({ type: 'mdxJsxAttribute', name: key, value } as never);
  return { type: 'mdxJsxFlowElement', name, attributes, children };
}


/** Wrap a code node in the lesson's code-block markup. */
export function wrapCodeBlock(node: Code): MdxJsxFlowElement {
  const info = codeBlockInfo(node.meta);
  const label = info.title ?? (node.lang ? node.lang : 'code');
  const header = element('div', 'code-header', [
    element('span', info.title ? 'code-title' : 'code-lang', [{ type: 'text', value: label } as never]),
    element('button', 'copy-button', [{ type: 'text', value: 'Копировать' } as never], {
      type: 'button',
      'aria-label': `Копировать код: ${label}`,
    }),
  ]);
  const children: MdxJsxFlowElement['children'] = [header, node];
  if (info.norun) children.push(element('p', 'code-norun', [{ type: 'text', value: `Не запускается: ${info.norun}` } as never]));
  return element('div', info.norun ? 'code-block code-block-norun' : 'code-block', children, info.source ? { 'data-source': info.source } : {});
}

/** The remark plugin: wrap every non-Mermaid fenced code block. */
export function remarkCodeBlocks() {
  return function transform(tree: Root): void {
    const walk = (parent: { children: RootContent[] }): void => {
      parent.children.forEach((child, index) => {
        if (child.type === 'code' && child.lang !== 'mermaid') {
          parent.children[index] = wrapCodeBlock(child) as unknown as RootContent;
        } else if ('children' in child && Array.isArray(child.children)) {
          walk(child as { children: RootContent[] });
        }
      });
    };
    walk(tree);
  };
}
