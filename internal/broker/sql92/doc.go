// Package sql92 parses and evaluates RocketMQ's SQL92 message selectors (expression type
// "SQL92"; the broker's enablePropertyFilter gates them on pull), with the grammar, the
// compile-time checks and the evaluation rules of RocketMQ's filter module (its
// SelectorParser.jj and the ActiveMQ-derived expression classes), so that a selector picks
// the same messages as on Apache RocketMQ:
//
//	numeric comparison   a > 5, a >= 5, a < 5, a <= 5, a = 5, a <> 5, a [NOT] BETWEEN 1 AND 3
//	string comparison    b = 'x', b <> 'x', b [NOT] IN ('x', 'y')
//	string functions     b [NOT] CONTAINS 'x', b [NOT] STARTSWITH 'x', b [NOT] ENDSWITH 'x'
//	null tests           c IS NULL, c IS NOT NULL
//	logic                AND, OR, NOT, parentheses; literals TRUE, FALSE, NULL; + and -
//
// Identifiers name message properties (TAGS and KEYS included); property values are
// Strings. RocketMQ's rules that surprise, kept on purpose (docs/qa/round10-U.md):
//   - a String compared with a literal is converted to the literal's Java type (Integer,
//     Long, Double, Boolean.valueOf); a failed conversion aborts the evaluation, and the
//     message does not match even if another OR branch is true;
//   - two Strings under > >= < <= are both read as doubles;
//   - unary NOT binds tighter than comparisons ("NOT a = 1" is "(NOT a) = 1");
//   - a bare property is FALSE (a String is not a Boolean), NULL when absent;
//   - "x = p" is NULL when x is null but FALSE when only p is; both null is TRUE;
//   - the string functions are FALSE (not NULL) for a missing property or an empty search.
//
// AND and OR are three-valued; a message matches when the selector is TRUE. Parse is the only
// decoder (fuzzed); an Expr is immutable and safe for concurrent use.
package sql92
