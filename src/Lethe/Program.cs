using System.CommandLine;
using Lethe.Cli;

var root = new RootCommand("Lethe, a Matrix homeserver that keeps your history under your control")
{
    ServeCommand.Create(),
    GenerateConfigCommand.Create(),
    RegisterUserCommand.Create(),
};

// The server's host handles SIGTERM and Ctrl+C itself; System.CommandLine must not race it for the signal.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
