import { defineConfig } from 'astro/config';
import mdx from '@astrojs/mdx';
import { unified } from '@astrojs/markdown-remark';
import { fileURLToPath } from 'node:url';
import { rehypeDiagrams } from './src/integrations/diagrams.ts';
import { remarkCodeBlocks } from './src/integrations/code-blocks.ts';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  site: 'http://localhost:4321',
  trailingSlash: 'always',
  integrations: [mdx()],
  markdown: {
    syntaxHighlight: { type: 'shiki', excludeLangs: ['mermaid'] },
    shikiConfig: {
      themes: { light: 'github-light-high-contrast', dark: 'github-dark-high-contrast' },
      defaultColor: 'light',
    },
    processor: unified({
      remarkPlugins: [remarkCodeBlocks],
      rehypePlugins: [[rehypeDiagrams, { cacheDir: `${root}src/diagrams`, root }]],
    }),
  },
  build: { inlineStylesheets: 'always' },
  devToolbar: { enabled: false },
});
