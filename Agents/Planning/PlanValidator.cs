namespace AspireAi.Agents.Planning;

/// <summary>Checks a plan before it runs: ids unique, dependencies known and acyclic, tools available, size within limit.</summary>
public static class PlanValidator
{
    /// <summary>The problems found; empty when the plan can run.</summary>
    public static List<string> Problems(Plan plan, IReadOnlyCollection<string> tools, int maxSteps, IReadOnlyCollection<string>? doneIds = null)
    {
        var problems = new List<string>();
        if (plan.Steps.Count == 0)
        {
            problems.Add("the plan has no steps");
        }

        if (plan.Steps.Count > maxSteps)
        {
            problems.Add($"the plan has {plan.Steps.Count} steps; at most {maxSteps} are allowed");
        }

        var ids = new HashSet<string>();
        foreach (var step in plan.Steps)
        {
            if (string.IsNullOrWhiteSpace(step.Id) || !ids.Add(step.Id))
            {
                problems.Add($"step id '{step.Id}' is empty or repeated");
            }

            if (step.Tool is { Length: > 0 } tool && !tools.Contains(tool))
            {
                problems.Add($"step '{step.Id}' names tool '{tool}', which this agent does not have (it has: {string.Join(", ", tools)})");
            }
        }

        foreach (var step in plan.Steps)
        {
            foreach (var dependency in step.DependsOn.Where(d => !ids.Contains(d) && !(doneIds?.Contains(d) ?? false)))
            {
                problems.Add($"step '{step.Id}' depends on unknown step '{dependency}'");
            }
        }

        if (problems.Count == 0 && HasCycle(plan))
        {
            problems.Add("the steps' dependencies form a cycle");
        }

        return problems;
    }

    /// <summary>Kahn's algorithm: a cycle leaves steps that never become ready.</summary>
    private static bool HasCycle(Plan plan)
    {
        var ids = plan.Steps.Select(s => s.Id).ToHashSet();
        var remaining = plan.Steps.ToDictionary(s => s.Id, s => s.DependsOn.Count(ids.Contains));
        var ready = new Queue<string>(remaining.Where(p => p.Value == 0).Select(p => p.Key));
        var seen = 0;
        while (ready.TryDequeue(out var id))
        {
            seen++;
            foreach (var step in plan.Steps.Where(s => s.DependsOn.Contains(id)))
            {
                if (--remaining[step.Id] == 0)
                {
                    ready.Enqueue(step.Id);
                }
            }
        }

        return seen != plan.Steps.Count;
    }
}
