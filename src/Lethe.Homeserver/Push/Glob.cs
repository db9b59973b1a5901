using System.Text;
using System.Text.RegularExpressions;

namespace Lethe.Homeserver.Push;

/// <summary>
/// A push rule glob (<c>*</c>, <c>?</c>, <c>[...]</c>), compiled once: a literal pattern becomes a string comparison,
/// anything else a case-insensitive regular expression. For <c>content.body</c> the glob matches words, not the whole
/// value (a match must start and end at a word boundary).
/// </summary>
public sealed class Glob
{
    private readonly string? _literal;
    private readonly Regex? _regex;
    private readonly bool _words;

    private Glob(string pattern, bool words)
    {
        _words = words;
        if (pattern.AsSpan().IndexOfAny("*?[") < 0)
        {
            _literal = pattern;
            return;
        }

        _regex = new Regex(RegexSource(pattern, words), RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Singleline, TimeSpan.FromMilliseconds(50));
    }

    /// <summary>
    /// The regular expression a glob stands for (<c>*</c>, <c>?</c>, <c>[...]</c> with <c>!</c> negation), anchored to
    /// the whole value or, with <paramref name="words"/>, to word boundaries. Also used for <c>url_preview_url_blacklist</c>.
    /// </summary>
    public static string RegexSource(string pattern, bool words)
    {
        var sb = new StringBuilder();
        sb.Append(words ? @"(?<![A-Za-z0-9_])" : "^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*':
                    sb.Append(words ? ".*?" : ".*");
                    break;
                case '?':
                    sb.Append('.');
                    break;
                case '[':
                    var end = pattern.IndexOf(']', i + 2 <= pattern.Length ? i + 2 : i + 1);
                    if (end < 0)
                    {
                        sb.Append(@"\[");
                        break;
                    }

                    var set = pattern[(i + 1)..end];
                    sb.Append('[');
                    if (set.StartsWith('!'))
                    {
                        sb.Append('^');
                        set = set[1..];
                    }

                    sb.Append(set.Replace(@"\", @"\\", StringComparison.Ordinal).Replace("[", @"\[", StringComparison.Ordinal));
                    sb.Append(']');
                    i = end;
                    break;
                default:
                    sb.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }

        sb.Append(words ? @"(?![A-Za-z0-9_])" : "$");
        return sb.ToString();
    }

    /// <summary>Compiles a glob matching a whole value.</summary>
    public static Glob Whole(string pattern) => new(pattern, words: false);

    /// <summary>Compiles a glob matching words within a value (the <c>content.body</c> rule).</summary>
    public static Glob Words(string pattern) => new(pattern, words: true);

    /// <summary>Whether the value matches.</summary>
    public bool IsMatch(string value)
    {
        if (_literal is not null)
        {
            return _words ? ContainsWord(value, _literal) : string.Equals(value, _literal, StringComparison.OrdinalIgnoreCase);
        }

        try
        {
            return _regex!.IsMatch(value);
        }
        catch (RegexMatchTimeoutException)
        {
            // A pathological pattern against a long body: treat as no match rather than stall the write path.
            return false;
        }
    }

    /// <summary>Whether <paramref name="text"/> contains <paramref name="word"/> (case-insensitively) starting and ending at word boundaries.</summary>
    public static bool ContainsWord(string text, string word) => ContainsWord(text, word, StringComparison.OrdinalIgnoreCase);

    /// <summary>As <see cref="ContainsWord(string, string)"/>, for text and word already in lower case (ordinal search: the hot path).</summary>
    public static bool ContainsLowerWord(string lowerText, string lowerWord) => ContainsWord(lowerText, lowerWord, StringComparison.Ordinal);

    private static bool ContainsWord(string text, string word, StringComparison comparison)
    {
        if (word.Length == 0)
        {
            return false;
        }

        var from = 0;
        while (from <= text.Length - word.Length)
        {
            var at = text.IndexOf(word, from, comparison);
            if (at < 0)
            {
                return false;
            }

            var end = at + word.Length;
            if ((at == 0 || !IsWordChar(text[at - 1]) || !IsWordChar(word[0]))
                && (end == text.Length || !IsWordChar(text[end]) || !IsWordChar(word[^1])))
            {
                return true;
            }

            from = at + 1;
        }

        return false;
    }

    private static bool IsWordChar(char c) => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_';
}
