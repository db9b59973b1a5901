using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Lethe.Homeserver.Media;

/// <summary>
/// Where media bytes live under <c>media_store_path</c>, in Synapse's layout so an operator's tools keep working:
/// <c>local_content/ab/cd/efgh…</c> for originals and <c>local_thumbnails/ab/cd/efgh…/W-H-type-subtype-method</c> for
/// thumbnails. New files are written under <c>tmp/</c> and renamed into place, so a crash or a truncated upload never
/// leaves a partial file where a reader could find it; what a crash leaves in <c>tmp/</c> is deleted after an hour.
/// </summary>
public sealed class MediaFiles
{
    private const string IdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    private readonly string _root;
    private readonly string _tmp;

    /// <summary>Opens the store at <paramref name="root"/>, creating it and clearing leftovers of interrupted writes.</summary>
    public MediaFiles(string root)
    {
        _root = Path.GetFullPath(root);
        _tmp = Path.Combine(_root, "tmp");
        Directory.CreateDirectory(_tmp);
        DeleteStaleTemps(TimeSpan.FromHours(1));
    }

    /// <summary>
    /// Deletes temp files not written to for <paramref name="age"/>: what a crash mid-upload left behind. Age rather
    /// than "everything", because another instance sharing this store may be mid-upload (at start and hourly).
    /// </summary>
    public int DeleteStaleTemps(TimeSpan age)
    {
        var deleted = 0;
        var cutoff = DateTime.UtcNow - age;
        foreach (var leftover in Directory.EnumerateFiles(_tmp))
        {
            if (File.GetLastWriteTimeUtc(leftover) < cutoff && TryDelete(leftover))
            {
                deleted++;
            }
        }

        return deleted;
    }

    /// <summary>The store's root folder.</summary>
    public string Root => _root;

    /// <summary>A new random media ID (24 letters, as Synapse makes them).</summary>
    public static string NewMediaId() => RandomNumberGenerator.GetString(IdAlphabet, 24);

    /// <summary>
    /// Whether <paramref name="mediaId"/> could name local media: the spec's alphabet (letters, digits, '_' and '-') and
    /// long enough to shard. Anything else (dots, slashes, percent-escapes) never reaches the file system.
    /// </summary>
    public static bool IsValidId(string mediaId)
    {
        if (mediaId.Length is < 5 or > 255)
        {
            return false;
        }

        foreach (var c in mediaId)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not '_' and not '-')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The path of an original; the ID must be valid.</summary>
    public string ContentPath(string mediaId) => Path.Combine(_root, "local_content", mediaId[..2], mediaId[2..4], mediaId[4..]);

    /// <summary>The folder holding an item's thumbnails.</summary>
    public string ThumbnailFolder(string mediaId) => Path.Combine(_root, "local_thumbnails", mediaId[..2], mediaId[2..4], mediaId[4..]);

    /// <summary>The path of one thumbnail.</summary>
    public string ThumbnailPath(string mediaId, int width, int height, string contentType, string method) =>
        Path.Combine(ThumbnailFolder(mediaId), $"{width}-{height}-{contentType.Replace('/', '-')}-{method}");

    /// <summary>A new temp file, open for writing; <see cref="CommitAsync"/> or <see cref="TryDelete"/> it.</summary>
    public FileStream CreateTemp() =>
        new(Path.Combine(_tmp, Guid.NewGuid().ToString("N") + ".part"), new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Options = FileOptions.Asynchronous,
            BufferSize = 128 * 1024, // request bodies arrive in small segments; write them to disk in large ones
        });

    /// <summary>
    /// Starts writing what <paramref name="temp"/> holds from <paramref name="from"/> on to disk without waiting for it
    /// (Linux <c>sync_file_range</c>), so the disk works while the rest of an upload streams in and the fsync at the end
    /// has little left to wait for. Returns the offset written up to; a hint only: on other systems, or if the call
    /// fails, the final fsync does all the work as before.
    /// </summary>
    public static long StartWriteback(FileStream temp, long from)
    {
        var handle = temp.SafeFileHandle; // flushes the stream's own buffer to the kernel first
        var to = temp.Position;
        if (OperatingSystem.IsLinux() && to > from)
        {
            _ = SyncFileRange(handle, from, to - from, SyncFileRangeWrite);
        }

        return to;
    }

    /// <summary>Writes a folder's entries to disk (Linux; elsewhere a no-op). .NET cannot open a folder as a file.</summary>
    private static void SyncFolder(string folder)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = Open(folder, 0); // O_RDONLY
        if (fd < 0)
        {
            throw new IOException($"Could not open {folder} to sync it (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"Could not sync {folder} (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [DllImport("libc.so.6", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc.so.6", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int fd);

    [DllImport("libc.so.6", EntryPoint = "close")]
    private static extern int Close(int fd);

    private const uint SyncFileRangeWrite = 2;

    [DllImport("libc.so.6", EntryPoint = "sync_file_range")]
    private static extern int SyncFileRange(Microsoft.Win32.SafeHandles.SafeFileHandle fd, long offset, long nbytes, uint flags);

    /// <summary>
    /// Flushes a finished temp file to disk, renames it to <paramref name="destination"/> and syncs the folders whose
    /// entries changed, so an answered upload survives a crash. Returns false (and deletes the temp file) when the
    /// destination already exists: media are write-once.
    /// </summary>
    public static async Task<bool> CommitAsync(FileStream temp, string destination)
    {
        var path = temp.Name;
        var folder = Path.GetDirectoryName(destination)!;
        var created = new List<string>(); // the shard folders this call makes, deepest first
        try
        {
            // Data first, then the name: after a crash the file is either complete or absent.
            await temp.FlushAsync();
            temp.Flush(flushToDisk: true);
            await temp.DisposeAsync();
            for (var f = folder; !Directory.Exists(f); f = Path.GetDirectoryName(f)!)
            {
                created.Add(f);
            }

            Directory.CreateDirectory(folder);
            File.Move(path, destination, overwrite: false);
        }
        catch (IOException) when (File.Exists(destination))
        {
            TryDelete(path);
            return false;
        }
        catch
        {
            await temp.DisposeAsync();
            TryDelete(path);
            throw;
        }

        // The new name (and any new folder) lives in its parent folder's entries, which fsync of the file does not
        // write: without this, a crash before the file system's next journal commit could lose an answered upload.
        SyncFolder(folder);
        foreach (var made in created)
        {
            SyncFolder(Path.GetDirectoryName(made)!);
        }

        return true;
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="destination"/> through a temp file (for thumbnails); false when it already exists.</summary>
    public async Task<bool> WriteAsync(string destination, ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        var temp = CreateTemp();
        try
        {
            await temp.WriteAsync(bytes, ct);
        }
        catch
        {
            await temp.DisposeAsync();
            TryDelete(temp.Name);
            throw;
        }

        return await CommitAsync(temp, destination);
    }

    /// <summary>Deletes an item's original and every thumbnail; returns whether anything was there.</summary>
    public bool DeleteAll(string mediaId)
    {
        var found = TryDelete(ContentPath(mediaId));
        var folder = ThumbnailFolder(mediaId);
        try
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
                found = true;
            }
        }
        catch (DirectoryNotFoundException)
        {
            // Deleted concurrently.
        }

        return found;
    }

    /// <summary>Deletes a file if it exists; true when it did.</summary>
    public static bool TryDelete(string path)
    {
        try
        {
            if (!File.Exists(path))
            {
                return false;
            }

            File.Delete(path);
            return true;
        }
        catch (DirectoryNotFoundException)
        {
            return false;
        }
    }
}
