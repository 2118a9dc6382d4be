//! `wasi:filesystem/types` over wasmtime-wasi's own, recording every refused operation as a
//! [`Denial`](crate::capabilities::denials::Denial): a path that escapes its preopen, a change to
//! a read-only preopen. Everything else is passed through unchanged.

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, Descriptor, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry,
    DirectoryEntryStream, ErrorCode, Filesize, HostDescriptor, HostDirectoryEntryStream,
    MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};

use crate::capabilities::Capability;
use crate::capabilities::denials::{DenialLog, RecordedView};

/// Links `wasi:filesystem/types` with recording, replacing what
/// `wasmtime_wasi::p2::add_to_linker_async` linked for it.
pub(crate) fn add_to_linker<T: RecordedView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    types::add_to_linker::<T, Recorded>(linker, recorded::<T>)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// wasmtime-wasi's filesystem view plus the call's denial log.
pub(crate) struct RecordedFs<'a> {
    inner: WasiFilesystemCtxView<'a>,
    denials: &'a DenialLog,
}

struct Recorded;

impl HasData for Recorded {
    type Data<'a> = RecordedFs<'a>;
}

fn recorded<T: RecordedView>(state: &mut T) -> RecordedFs<'_> {
    let (wasi, denials) = state.recorded();
    RecordedFs {
        inner: WasiFilesystemCtxView {
            ctx: wasi.ctx.filesystem(),
            table: wasi.table,
        },
        denials,
    }
}

impl RecordedFs<'_> {
    /// Passes `result` on, recording a refusal (not permitted, access, read-only) of `what`.
    fn record<T>(&self, result: FsResult<T>, what: impl FnOnce() -> String) -> FsResult<T> {
        self.denials.record(
            result,
            Capability::Filesystem,
            |code| {
                matches!(
                    code,
                    ErrorCode::NotPermitted | ErrorCode::Access | ErrorCode::ReadOnly
                )
            },
            |code| format!("{} ({code:?})", what()),
        )
    }
}

impl types::Host for RecordedFs<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        self.inner.convert_error_code(err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        self.inner.filesystem_error_code(err)
    }
}

impl HostDescriptor for RecordedFs<'_> {
    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
        len: Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        self.inner.advise(fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.inner.sync_data(fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags> {
        self.inner.get_flags(fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorType> {
        self.inner.get_type(fd).await
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: Filesize) -> FsResult<()> {
        let result = self.inner.set_size(fd, size).await;
        self.record(result, || "set size".into())
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        let result = self.inner.set_times(fd, atim, mtim).await;
        self.record(result, || "set times".into())
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: Filesize,
        offset: Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        self.inner.read(fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: Filesize,
    ) -> FsResult<Filesize> {
        let result = self.inner.write(fd, buf, offset).await;
        self.record(result, || "write".into())
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DirectoryEntryStream>> {
        self.inner.read_directory(fd).await
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.inner.sync(fd).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let result = self.inner.create_directory_at(fd, path.clone()).await;
        self.record(result, || format!("create directory {path:?}"))
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorStat> {
        self.inner.stat(fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<DescriptorStat> {
        let result = self.inner.stat_at(fd, path_flags, path.clone()).await;
        self.record(result, || format!("stat {path:?}"))
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        let result = self
            .inner
            .set_times_at(fd, path_flags, path.clone(), atim, mtim)
            .await;
        self.record(result, || format!("set times {path:?}"))
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: PathFlags,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let result = self
            .inner
            .link_at(
                fd,
                old_path_flags,
                old_path.clone(),
                new_descriptor,
                new_path.clone(),
            )
            .await;
        self.record(result, || format!("hard link {old_path:?} -> {new_path:?}"))
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        oflags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let result = self
            .inner
            .open_at(fd, path_flags, path.clone(), oflags, flags)
            .await;
        self.record(result, || format!("open {path:?}"))
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        HostDescriptor::drop(&mut self.inner, fd)
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        let result = self.inner.readlink_at(fd, path.clone()).await;
        self.record(result, || format!("read link {path:?}"))
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let result = self.inner.remove_directory_at(fd, path.clone()).await;
        self.record(result, || format!("remove directory {path:?}"))
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let result = self
            .inner
            .rename_at(fd, old_path.clone(), new_fd, new_path.clone())
            .await;
        self.record(result, || format!("rename {old_path:?} -> {new_path:?}"))
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        let result = self
            .inner
            .symlink_at(fd, src_path.clone(), dest_path.clone())
            .await;
        self.record(result, || format!("symlink {dest_path:?} -> {src_path:?}"))
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let result = self.inner.unlink_file_at(fd, path.clone()).await;
        self.record(result, || format!("remove {path:?}"))
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        self.inner.read_via_stream(fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let result = self.inner.write_via_stream(fd, offset);
        self.record(result, || "write".into())
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let result = self.inner.append_via_stream(fd);
        self.record(result, || "append".into())
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        self.inner.is_same_object(a, b).await
    }

    async fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<MetadataHashValue> {
        self.inner.metadata_hash(fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<MetadataHashValue> {
        let result = self
            .inner
            .metadata_hash_at(fd, path_flags, path.clone())
            .await;
        self.record(result, || format!("stat {path:?}"))
    }
}

impl HostDirectoryEntryStream for RecordedFs<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<DirectoryEntryStream>,
    ) -> FsResult<Option<DirectoryEntry>> {
        self.inner.read_directory_entry(stream).await
    }

    fn drop(&mut self, stream: Resource<DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.inner, stream)
    }
}
