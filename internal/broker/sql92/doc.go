// Package sql92 parses and evaluates RocketMQ's SQL92 message selectors (expression type
// "SQL92", broker setting enablePropertyFilter), the JMS-style subset RocketMQ documents:
//
//	numeric comparison   a > 5, a >= 5, a < 5, a <= 5, a = 5, a <> 5, a BETWEEN 1 AND 3
//	string comparison    b = 'x', b <> 'x', b IN ('x', 'y'), b NOT IN (...)
//	string functions     b CONTAINS 'x', b STARTSWITH 'x', b ENDSWITH 'x' (and NOT ...)
//	null tests           c IS NULL, c IS NOT NULL
//	logic                AND, OR, NOT, parentheses; literals TRUE, FALSE, NULL
//
// Identifiers name message properties (TAGS and KEYS included). Property values are strings;
// compared with a number they are read as one, with TRUE/FALSE as a boolean. Evaluation is
// three-valued as in SQL: a comparison with a missing property, or with a value that does not
// convert, is unknown, NOT unknown is unknown, and a message matches only when the whole
// expression is true. Keywords are case-insensitive; strings use single quotes (” escapes
// one).
//
// Parse is the only decoder (fuzzed); an Expr is immutable and safe for concurrent use.
package sql92
