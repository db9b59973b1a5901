using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;

namespace Lethe.Homeserver.Http;

/// <summary>
/// Kestrel's buffers in 32 KiB blocks instead of its own 4 KiB ones: the socket loop receives into one block per
/// <c>recv</c>, so a 1 MiB upload takes 32 calls instead of 256. Blocks are pinned and reused; at most
/// <see cref="MaxFree"/> idle ones are kept (8 MiB), the rest are left to the GC.
/// </summary>
public sealed class LargeBlockMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    /// <inheritdoc />
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool();

    private sealed class LargeBlockMemoryPool : MemoryPool<byte>
    {
        private const int BlockSize = 32 * 1024;
        private const int MaxFree = 256;
        private readonly ConcurrentQueue<Block> _free = new();

        public override int MaxBufferSize => BlockSize;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
            return _free.TryDequeue(out var block) ? block : new Block(this);
        }

        protected override void Dispose(bool disposing)
        {
            _free.Clear();
        }

        private void Return(Block block)
        {
            if (_free.Count < MaxFree)
            {
                _free.Enqueue(block);
            }
        }

        private sealed class Block(LargeBlockMemoryPool pool) : IMemoryOwner<byte>
        {
            public Memory<byte> Memory { get; } = MemoryMarshal.CreateFromPinnedArray(GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true), 0, BlockSize);

            public void Dispose() => pool.Return(this);
        }
    }
}
