import { beforeEach } from 'vitest';

// A format specifier that does not fit its value (`%i` of an object, a string) renders as NaN in a test's title:
// such a title names no case, so the test fails until its specifiers match the table's columns.
beforeEach(({ task }) => {
  if (/\bNaN\b/.test(task.name))
    throw new Error(`the title "${task.name}" renders a value as NaN: fix the format specifiers of its it.each`);
});
