using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Lethe.Protocol.Crypto;

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
    public static string NewMediaId() => SecureRandom.String(IdAlphabet, 24);

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

    /// <summary>
    /// A new temp file, open for writing, that <see cref="TempFile.Commit"/> renames to <paramref name="destination"/>
    /// (or that is deleted when disposed uncommitted).
    /// </summary>
    public TempFile CreateTemp(string destination) => new(Path.Combine(_tmp, Guid.NewGuid().ToString("N") + ".part"), destination);

    /// <summary>
    /// A file being written under <c>tmp/</c>: appended to with plain (gathering) writes into the page cache, straight
    /// from the buffers the bytes arrived in, with the disk started on each piece as it lands. Not a
    /// <see cref="FileStream"/>: its buffer copied every byte once more and its asynchronous writes are a thread-pool hop
    /// each, together 0.9–1.3 ms of a 1 MiB upload whose page-cache writes take 0.2 ms.
    /// </summary>
    public sealed class TempFile : IDisposable
    {
        private readonly SafeFileHandle _handle;
        private readonly string _path;
        private readonly string _destination;
        private readonly List<string> _createdFolders = []; // the shard folders this file's creation made, deepest first
        private readonly List<ReadOnlyMemory<byte>> _pieces = [];
        private long _length;
        private bool _committed;

        internal TempFile(string path, string destination)
        {
            _path = path;
            _destination = destination;

            // The destination's shard folders are made now, while the body is still arriving, rather than after the
            // fsync: that takes them off the path to the answer, and the file's fsync then writes them to disk with it.
            var folder = Path.GetDirectoryName(destination)!;
            for (var f = folder; !Directory.Exists(f); f = Path.GetDirectoryName(f)!)
            {
                _createdFolders.Add(f);
            }

            Directory.CreateDirectory(folder);
            _handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write);
        }

        /// <summary>Appends <paramref name="bytes"/> (one system call however many segments) and starts writing them to disk.</summary>
        public void Append(in ReadOnlySequence<byte> bytes)
        {
            if (bytes.IsSingleSegment)
            {
                RandomAccess.Write(_handle, bytes.FirstSpan, _length);
            }
            else
            {
                _pieces.Clear();
                foreach (var segment in bytes)
                {
                    _pieces.Add(segment);
                }

                RandomAccess.Write(_handle, _pieces, _length);
            }

            StartWriteback(_length, bytes.Length);
            _length += bytes.Length;
        }

        /// <summary>
        /// Starts writing a range to disk without waiting for it (Linux <c>sync_file_range</c>), so the disk works while
        /// the rest of an upload streams in and the fsync at the end has little left to wait for. A hint only: on other
        /// systems, or if the call fails, the final fsync does all the work.
        /// </summary>
        private void StartWriteback(long offset, long count)
        {
            if (OperatingSystem.IsLinux() && count > 0)
            {
                _ = SyncFileRange(_handle, offset, count, SyncFileRangeWrite);
            }
        }

        /// <summary>
        /// Flushes the file to disk, renames it to its destination and syncs the folders whose entries changed, so an
        /// answered upload survives a crash. Returns false (and leaves the temp file for disposal) when the destination
        /// already exists: media are write-once.
        /// </summary>
        public bool Commit()
        {
            try
            {
                // Data first, then the name: after a crash the file is either complete or absent.
                RandomAccess.FlushToDisk(_handle);
                _handle.Dispose();
                File.Move(_path, _destination, overwrite: false);
                _committed = true;
            }
            catch (IOException) when (File.Exists(_destination))
            {
                return false;
            }

            // The new name (and any new folder) lives in its parent folder's entries, which fsync of the file does not
            // write: without this, a crash before the file system's next journal commit could lose an answered upload.
            SyncFolder(Path.GetDirectoryName(_destination)!);
            foreach (var made in _createdFolders)
            {
                SyncFolder(Path.GetDirectoryName(made)!);
            }

            return true;
        }

        /// <summary>Closes the file and, unless it was committed, deletes it.</summary>
        public void Dispose()
        {
            _handle.Dispose();
            if (!_committed)
            {
                TryDelete(_path);
            }
        }
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
    private static extern int SyncFileRange(SafeFileHandle fd, long offset, long nbytes, uint flags);

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="destination"/> through a temp file (for thumbnails); false when it already exists.</summary>
    public bool Write(string destination, ReadOnlyMemory<byte> bytes)
    {
        using var temp = CreateTemp(destination);
        temp.Append(new ReadOnlySequence<byte>(bytes));
        return temp.Commit();
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
