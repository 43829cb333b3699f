//! Image folders: one sub-folder per class (`DIR/<class>/*.jpg|*.jpeg|*.png`), the way users
//! keep their own images (and the layout of CIFAR-10's JPEG copy: `train/<class>/NNNN.jpg`).
//!
//! Decoding (by the `image` crate) happens once: the decoded pixels are cached in a file next
//! to the images, `DIR/.sparse-data-cache`, together with the name, size and modification time
//! of every source file. A later load lists the folder, compares that list with the cached one
//! and reads the pixels back without decoding anything; any added, removed, resized or touched
//! image makes it decode the folder again and rewrite the cache.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::{CifarSet, DataError};

/// The cache file written inside an image folder.
pub const IMAGE_FOLDER_CACHE: &str = ".sparse-data-cache";

const CACHE_MAGIC: &[u8; 8] = b"SPIMGF1\n";
const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// RGB images of one size with labels from their folder names, sorted by name: label `i` is
/// `classes[i]`.
///
/// ```
/// use sparse_data::ImageFolder;
/// # let dir = std::env::temp_dir().join(format!("doc-image-folder-{}", std::process::id()));
/// # for (class, shade) in [("cat", 40u8), ("dog", 200)] {
/// #     std::fs::create_dir_all(dir.join(class)).unwrap();
/// #     image::RgbImage::from_pixel(4, 3, image::Rgb([shade; 3])).save(dir.join(class).join("a.png")).unwrap();
/// # }
/// // dir/cat/a.png, dir/dog/a.png: two 4x3 images.
/// let set = ImageFolder::load(&dir, None).unwrap();
/// assert_eq!(set.classes, ["cat", "dog"]);
/// assert_eq!((set.len(), set.height, set.width), (2, 3, 4));
/// assert_eq!(set.labels, [0, 1]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFolder {
    /// The class folders' names, sorted; a label indexes this list.
    pub classes: Vec<String>,
    /// `len * 3 * height * width` bytes, channel-major (red plane, green, blue) per image.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// How many images this load decoded: 0 when every pixel came from the cache.
    pub decoded: usize,
}

/// One source image: its path relative to the folder, size and modification time.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    class: usize,
    path: PathBuf,
    size: u64,
    mtime_ns: u128,
}

impl ImageFolder {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Load the images under `dir` (one sub-folder per class), from the cache when it matches
    /// the files, else decoding them and writing the cache (a folder that cannot be written is
    /// decoded every time, with a warning). Every image must be `size` (height, width), or,
    /// when `size` is `None`, the size of the first image.
    pub fn load(dir: impl AsRef<Path>, size: Option<(usize, usize)>) -> Result<Self, DataError> {
        let dir = dir.as_ref();
        let (classes, entries) = list(dir)?;
        let manifest = manifest(&classes, &entries);
        let cache = dir.join(IMAGE_FOLDER_CACHE);
        if let Some(set) = read_cache(&cache, &manifest, &classes, &entries)
            && size.is_none_or(|s| s == (set.height, set.width))
        {
            return Ok(set);
        }
        let set = decode(dir, classes, &entries, size)?;
        if let Err(e) = write_cache(&cache, &manifest, &set) {
            eprintln!("warning: {e} (the images will be decoded again next time)");
        }
        Ok(set)
    }

    /// A training and a test folder that must hold the same classes: `root/train` and
    /// `root/test`.
    pub fn load_split(
        root: impl AsRef<Path>,
        size: Option<(usize, usize)>,
    ) -> Result<(Self, Self), DataError> {
        let root = root.as_ref();
        let train = Self::load(root.join("train"), size)?;
        let test = Self::load(root.join("test"), Some((train.height, train.width)))?;
        if test.classes != train.classes {
            return Err(DataError::new(
                root.join("test"),
                format!(
                    "classes {:?} differ from {}'s {:?}: expected the same class folders in both",
                    test.classes,
                    root.join("train").display(),
                    train.classes
                ),
            ));
        }
        Ok((train, test))
    }

    /// Whether `root` looks like an image-folder data set: a `train/` folder with at least one
    /// sub-folder.
    pub fn is_split_root(root: impl AsRef<Path>) -> bool {
        std::fs::read_dir(root.as_ref().join("train"))
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_type().is_ok_and(|t| t.is_dir()))))
    }

    /// The images as a [`CifarSet`] (CIFAR-10's layout: 32x32, labels below 10), for the
    /// CIFAR pipeline's batches and augmentation.
    pub fn into_cifar(self, dir: impl AsRef<Path>) -> Result<CifarSet, DataError> {
        if (self.height, self.width) != (32, 32) {
            return Err(DataError::new(
                dir,
                format!(
                    "{}x{} images, expected 32x32 (CIFAR-10's size)",
                    self.width, self.height
                ),
            ));
        }
        Ok(CifarSet {
            pixels: self.pixels,
            labels: self.labels,
        })
    }
}

/// The class folders (sorted) and their images (sorted by name within a class).
fn list(dir: &Path) -> Result<(Vec<String>, Vec<Entry>), DataError> {
    let read = |d: &Path| {
        std::fs::read_dir(d).map_err(|e| {
            DataError::new(
                d,
                format!("cannot read the folder: {e} (expected one sub-folder per class)"),
            )
        })
    };
    let mut classes = Vec::new();
    for e in read(dir)? {
        let e = e.map_err(|e| DataError::new(dir, format!("cannot read the folder: {e}")))?;
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            classes.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    classes.sort();
    if classes.is_empty() {
        return Err(DataError::new(
            dir,
            "no class folders: expected one sub-folder per class, holding its images",
        ));
    }
    if classes.len() > 256 {
        return Err(DataError::new(
            dir,
            format!("{} class folders, expected at most 256", classes.len()),
        ));
    }
    let mut entries = Vec::new();
    for (class, name) in classes.iter().enumerate() {
        let folder = dir.join(name);
        let mut files = Vec::new();
        for e in read(&folder)? {
            let e = e.map_err(|e| DataError::new(&folder, format!("cannot read: {e}")))?;
            let path = e.path();
            let image = path.extension().is_some_and(|x| {
                EXTENSIONS.contains(&x.to_string_lossy().to_ascii_lowercase().as_str())
            });
            if image {
                let meta = e
                    .metadata()
                    .map_err(|err| DataError::new(&path, format!("cannot read: {err}")))?;
                let mtime_ns = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                files.push(Entry {
                    class,
                    path: Path::new(name).join(e.file_name()),
                    size: meta.len(),
                    mtime_ns,
                });
            }
        }
        if files.is_empty() {
            return Err(DataError::new(
                &folder,
                "no images: expected .jpg, .jpeg or .png files in each class folder",
            ));
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        entries.extend(files);
    }
    Ok((classes, entries))
}

/// The text that identifies the source files: one line per class, then per image.
fn manifest(classes: &[String], entries: &[Entry]) -> String {
    let mut text = String::new();
    for c in classes {
        text.push_str(&format!("class\t{c}\n"));
    }
    for e in entries {
        text.push_str(&format!(
            "{}\t{}\t{}\n",
            e.path.display(),
            e.size,
            e.mtime_ns
        ));
    }
    text
}

fn decode(
    dir: &Path,
    classes: Vec<String>,
    entries: &[Entry],
    size: Option<(usize, usize)>,
) -> Result<ImageFolder, DataError> {
    let mut set = ImageFolder {
        classes,
        pixels: Vec::new(),
        labels: Vec::with_capacity(entries.len()),
        height: 0,
        width: 0,
        decoded: 0,
    };
    let mut expected = size;
    for e in entries {
        let path = dir.join(&e.path);
        let image = image::ImageReader::open(&path)
            .map_err(|err| DataError::new(&path, format!("cannot read: {err}")))?
            .with_guessed_format()
            .map_err(|err| DataError::new(&path, format!("cannot read: {err}")))?
            .decode()
            .map_err(|err| {
                DataError::new(
                    &path,
                    format!("cannot decode the image: {err} (expected a JPEG or PNG file)"),
                )
            })?
            .into_rgb8();
        let (w, h) = (image.width() as usize, image.height() as usize);
        match expected {
            None => expected = Some((h, w)),
            Some((eh, ew)) if (eh, ew) != (h, w) => {
                let whose = if size.is_some() {
                    "the size asked for"
                } else {
                    "the size of the first image"
                };
                return Err(DataError::new(
                    &path,
                    format!("{w}x{h} image, expected {ew}x{eh} ({whose})"),
                ));
            }
            Some(_) => {}
        }
        let plane = w * h;
        let start = set.pixels.len();
        set.pixels.resize(start + 3 * plane, 0);
        let out = &mut set.pixels[start..];
        for (i, px) in image.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = px.0[c];
            }
        }
        set.labels.push(e.class as u8);
        set.decoded += 1;
    }
    (set.height, set.width) = expected.expect("at least one image (checked by list)");
    Ok(set)
}

/// The cached set, when the cache file exists and was made from exactly these files.
fn read_cache(
    cache: &Path,
    manifest: &str,
    classes: &[String],
    entries: &[Entry],
) -> Option<ImageFolder> {
    let bytes = std::fs::read(cache).ok()?;
    let rest = bytes.strip_prefix(CACHE_MAGIC)?;
    let word = |b: &[u8], at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
    };
    let (m, h, w) = (word(rest, 0)?, word(rest, 8)?, word(rest, 16)?);
    let rest = &rest[24..];
    let stored = rest.get(..m as usize)?;
    if stored != manifest.as_bytes() {
        return None;
    }
    let (h, w) = (h as usize, w as usize);
    let n = entries.len();
    let data = &rest[m as usize..];
    if data.len() != n * 3 * h * w {
        return None;
    }
    Some(ImageFolder {
        classes: classes.to_vec(),
        pixels: data.to_vec(),
        labels: entries.iter().map(|e| e.class as u8).collect(),
        height: h,
        width: w,
        decoded: 0,
    })
}

/// Write the cache through a temporary file and a rename: a killed run leaves no half cache.
fn write_cache(cache: &Path, manifest: &str, set: &ImageFolder) -> Result<(), DataError> {
    let tmp = cache.with_extension("tmp");
    let mut bytes = Vec::with_capacity(32 + manifest.len() + set.pixels.len());
    bytes.extend(CACHE_MAGIC);
    for v in [manifest.len(), set.height, set.width] {
        bytes.extend((v as u64).to_le_bytes());
    }
    bytes.extend(manifest.as_bytes());
    bytes.extend(&set.pixels);
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, cache))
        .map_err(|e| {
            std::fs::remove_file(&tmp).ok();
            DataError::new(cache, format!("cannot write the decoded-image cache: {e}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the temporary directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("image-folder-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        /// An RGB image `w` x `h` filled with `shade`, saved as `rel` (PNG or JPEG by name).
        fn image(&self, rel: &str, w: u32, h: u32, shade: u8) -> PathBuf {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([shade, x as u8, y as u8]))
                .save(&path)
                .unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn message(e: DataError, root: &Path) -> String {
        e.to_string().replace(&root.display().to_string(), "ROOT")
    }

    #[test]
    fn labels_follow_the_sorted_folder_names_and_pixels_are_channel_major() {
        let s = Scratch::new("labels");
        s.image("truck/1.png", 3, 2, 9);
        s.image("cat/2.png", 3, 2, 5);
        s.image("cat/1.png", 3, 2, 4);
        s.image("bird/x.jpg", 3, 2, 200);
        std::fs::write(s.0.join("cat/notes.txt"), "not an image").unwrap();
        let set = ImageFolder::load(&s.0, None).unwrap();
        assert_eq!(set.classes, ["bird", "cat", "truck"]);
        assert_eq!(set.labels, [0, 1, 1, 2]);
        assert_eq!((set.height, set.width, set.len()), (2, 3, 4));
        // cat/1.png: red plane all 4, green = column, blue = row (PNG is lossless).
        let cat1 = &set.pixels[18..36];
        assert_eq!(&cat1[..6], &[4; 6]);
        assert_eq!(&cat1[6..12], &[0, 1, 2, 0, 1, 2]);
        assert_eq!(&cat1[12..], &[0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn a_second_load_reads_the_cache_and_a_changed_file_rebuilds_it() {
        let s = Scratch::new("cache");
        s.image("a/1.png", 4, 4, 1);
        s.image("b/1.png", 4, 4, 2);
        let first = ImageFolder::load(&s.0, Some((4, 4))).unwrap();
        assert_eq!(first.decoded, 2);
        assert!(s.0.join(IMAGE_FOLDER_CACHE).is_file());
        let second = ImageFolder::load(&s.0, Some((4, 4))).unwrap();
        assert_eq!(second.decoded, 0, "the second load decoded images");
        assert_eq!(
            (&second.pixels, &second.labels),
            (&first.pixels, &first.labels)
        );
        // A changed image (another size on disk) is decoded again, and so is the folder.
        s.image("b/1.png", 4, 4, 250);
        let third = ImageFolder::load(&s.0, Some((4, 4))).unwrap();
        assert_eq!(third.decoded, 2);
        assert_ne!(third.pixels, first.pixels);
        // An added image too.
        s.image("b/2.png", 4, 4, 3);
        assert_eq!(ImageFolder::load(&s.0, None).unwrap().decoded, 3);
        assert_eq!(ImageFolder::load(&s.0, None).unwrap().decoded, 0);
    }

    #[test]
    fn bad_folders_and_images_are_named_with_what_was_expected() {
        let s = Scratch::new("errors");
        let err = |dir: &Path, size| message(ImageFolder::load(dir, size).unwrap_err(), &s.0);
        assert_eq!(
            err(&s.0, None),
            "ROOT: no class folders: expected one sub-folder per class, holding its images"
        );
        s.image("a/1.png", 4, 4, 1);
        std::fs::create_dir_all(s.0.join("b")).unwrap();
        assert_eq!(
            err(&s.0, None),
            "ROOT/b: no images: expected .jpg, .jpeg or .png files in each class folder"
        );
        s.image("b/1.png", 5, 4, 1);
        assert_eq!(
            err(&s.0, None),
            "ROOT/b/1.png: 5x4 image, expected 4x4 (the size of the first image)"
        );
        assert_eq!(
            err(&s.0, Some((32, 32))),
            "ROOT/a/1.png: 4x4 image, expected 32x32 (the size asked for)"
        );
        s.image("b/1.png", 4, 4, 1);
        std::fs::write(s.0.join("b/2.jpg"), b"\xff\xd8\xff\xe0 truncated").unwrap();
        let corrupt = err(&s.0, None);
        assert!(
            corrupt.starts_with("ROOT/b/2.jpg: cannot decode the image: ")
                && corrupt.ends_with(" (expected a JPEG or PNG file)"),
            "{corrupt}"
        );
        assert_eq!(
            err(&s.0.join("missing"), None).split(": ").next().unwrap(),
            "ROOT/missing"
        );
    }

    #[test]
    fn train_and_test_must_hold_the_same_classes() {
        let s = Scratch::new("split");
        s.image("train/cat/1.png", 32, 32, 1);
        s.image("train/dog/1.png", 32, 32, 1);
        s.image("test/cat/1.png", 32, 32, 1);
        s.image("test/emu/1.png", 32, 32, 1);
        assert!(ImageFolder::is_split_root(&s.0));
        let e = message(ImageFolder::load_split(&s.0, None).unwrap_err(), &s.0);
        assert_eq!(
            e,
            "ROOT/test: classes [\"cat\", \"emu\"] differ from ROOT/train's [\"cat\", \"dog\"]: \
             expected the same class folders in both"
        );
        std::fs::rename(s.0.join("test/emu"), s.0.join("test/dog")).unwrap();
        let (train, test) = ImageFolder::load_split(&s.0, None).unwrap();
        assert_eq!((train.len(), test.len()), (2, 2));
        let cifar = train.into_cifar(s.0.join("train")).unwrap();
        assert_eq!(cifar.pixels.len(), 2 * 3072);
        s.image("small/a/1.png", 8, 8, 1);
        let small = ImageFolder::load(s.0.join("small"), None).unwrap();
        assert_eq!(
            message(small.into_cifar(s.0.join("small")).unwrap_err(), &s.0),
            "ROOT/small: 8x8 images, expected 32x32 (CIFAR-10's size)"
        );
    }
}
