using System.CommandLine;
using Lethe.Cli;

var root = new RootCommand("Lethe, a Matrix homeserver that keeps your history under your control")
{
    ServeCommand.Create(),
    GenerateConfigCommand.Create(),
    RegisterUserCommand.Create(),
    RoomCommand.Create(),
    ExportUserCommand.Create(),
};

// Matrix user IDs start with '@', which System.CommandLine would otherwise read as a response file name.
var parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });

// The server's host handles SIGTERM and Ctrl+C itself; System.CommandLine must not race it for the signal.
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
