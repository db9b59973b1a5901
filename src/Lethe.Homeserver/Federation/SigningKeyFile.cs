using Lethe.Homeserver.Configuration;
using Lethe.Protocol.Crypto;

namespace Lethe.Homeserver.Federation;

/// <summary>Loads the server's signing key from the Synapse-format key file, generating the file on first start.</summary>
public static class SigningKeyFile
{
    /// <summary>Reads the key at <paramref name="path"/>, creating it (mode 0600) when the file does not exist.</summary>
    /// <exception cref="ConfigException">The file exists but is not a valid key file.</exception>
    public static SigningKey LoadOrCreate(string path)
    {
        if (File.Exists(path))
        {
            try
            {
                return SigningKey.ParseSynapseKeyFile(File.ReadAllText(path));
            }
            catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
            {
                throw new ConfigException("signing_key_path", $"'{path}' is not a signing key file: {e.Message}");
            }
        }

        var key = SigningKey.Generate();
        try
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(path));
            if (!string.IsNullOrEmpty(dir))
            {
                Directory.CreateDirectory(dir);
            }

            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var stream = new FileStream(path, options))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(key.ToSynapseKeyFile());
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException("signing_key_path", $"cannot write a new signing key to '{path}': {e.Message.TrimEnd('.')}");
        }

        return key;
    }
}
