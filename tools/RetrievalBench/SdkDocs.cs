using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace AspireAi.RetrievalBench;

/// <summary>One documented API member of the .NET reference packs: its name and the parts of its XML documentation.</summary>
internal sealed partial record Member(string Name, string Summary, string Rest)
{
    /// <summary>The summary's first sentence: the evaluation's query for this member.</summary>
    public string FirstSentence => SentenceEnd().Match(Summary) is { Success: true } m ? Summary[..(m.Index + 1)] : Summary;

    /// <summary>The member's document; without its first sentence when that sentence is its query (held out).</summary>
    public string Document(bool holdOutFirstSentence)
    {
        var summary = holdOutFirstSentence ? Summary[FirstSentence.Length..].Trim() : Summary;
        return $"{Name}: {summary} {Rest}".Trim();
    }

    [GeneratedRegex(@"[.!?](\s|$)")]
    private static partial Regex SentenceEnd();
}

/// <summary>Reads <c>packs/Microsoft.NETCore.App.Ref/*/ref/*/*.xml</c>: several thousand members with real prose.</summary>
internal static partial class SdkDocs
{
    public static List<Member> Load()
    {
        var root = Path.GetDirectoryName(typeof(object).Assembly.Location)!; // …/shared/Microsoft.NETCore.App/10.x
        var dotnet = Path.GetFullPath(Path.Combine(root, "..", "..", ".."));
        var packs = Path.Combine(dotnet, "packs", "Microsoft.NETCore.App.Ref");
        var folder = Directory.GetDirectories(packs).OrderByDescending(d => d).Select(d => Directory.GetDirectories(Path.Combine(d, "ref")).FirstOrDefault())
            .FirstOrDefault(d => d is not null) ?? throw new DirectoryNotFoundException($"No reference pack documentation under {packs}.");
        var members = new List<Member>();
        foreach (var file in Directory.GetFiles(folder, "*.xml").Order())
        {
            foreach (var member in XDocument.Load(file).Descendants("member"))
            {
                var summary = Render(member.Element("summary"));
                if (summary.Length < 40)
                {
                    continue;
                }

                var rest = new StringBuilder();
                rest.Append(Render(member.Element("remarks")));
                foreach (var param in member.Elements("param"))
                {
                    rest.Append($" {param.Attribute("name")?.Value}: {Render(param)}");
                }

                if (member.Element("returns") is { } returns)
                {
                    rest.Append(" Returns: ").Append(Render(returns));
                }

                members.Add(new Member(DisplayName(member.Attribute("name")!.Value), summary, Collapse(rest.ToString())));
            }
        }

        return members;
    }

    /// <summary>"M:System.Linq.Enumerable.Where``1(…)" → "System.Linq.Enumerable.Where".</summary>
    private static string DisplayName(string id)
    {
        var name = id.Length > 2 && id[1] == ':' ? id[2..] : id;
        var paren = name.IndexOf('(');
        name = paren >= 0 ? name[..paren] : name;
        return name.Replace("``", "`").Split('`')[0].Replace("#ctor", "constructor");
    }

    private static string Render(XElement? element)
    {
        if (element is null)
        {
            return "";
        }

        var text = new StringBuilder();
        foreach (var node in element.Nodes())
        {
            text.Append(node switch
            {
                XText t => t.Value,
                XElement { Name.LocalName: "see" or "seealso" } see => see.Attribute("langword")?.Value
                    ?? see.Attribute("cref")?.Value.Split('(')[0].Split('.')[^1].Split('`')[0] ?? see.Value,
                XElement { Name.LocalName: "paramref" or "typeparamref" } r => r.Attribute("name")?.Value ?? "",
                XElement e => " " + Render(e) + " ",
                _ => "",
            });
        }

        return Collapse(text.ToString());
    }

    private static string Collapse(string text) => MultipleSpaces().Replace(text, " ").Trim();

    [GeneratedRegex(@"\s+")]
    private static partial Regex MultipleSpaces();
}
