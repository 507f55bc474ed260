package bundle

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"slices"
)

// ListFiles describes every regular file of a bundle but the manifest and
// its timestamp, sorted by path: the manifest's Files. Anything else than
// directories and regular files is refused: a bundle holds no links.
func ListFiles(fsys fs.FS) ([]File, error) {
	var files []File
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		if p == ManifestFile || p == ManifestTSR {
			return nil
		}
		sum, size, err := hashFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		files = append(files, File{Path: p, SHA256: sum, Size: size})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b File) int { return cmp.Compare(a.Path, b.Path) })
	return files, nil
}

// CheckFiles compares a bundle with the manifest's list: every listed file
// there with its size and SHA-256, no file there unlisted. It returns the
// problems found.
func CheckFiles(fsys fs.FS, files []File) []string {
	var problems []string
	listed := map[string]bool{}
	for _, f := range files {
		listed[f.Path] = true
		info, err := fs.Stat(fsys, f.Path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: listed in the manifest but missing: %v", f.Path, err))
			continue
		}
		if !info.Mode().IsRegular() {
			problems = append(problems, fmt.Sprintf("%s: not a regular file", f.Path))
			continue
		}
		sum, size, err := hashFile(fsys, f.Path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f.Path, err))
			continue
		}
		if size != f.Size {
			problems = append(problems, fmt.Sprintf("%s: size %d, the manifest says %d", f.Path, size, f.Size))
		}
		if sum != f.SHA256 {
			problems = append(problems, fmt.Sprintf("%s: sha256 %s, the manifest says %s", f.Path, sum, f.SHA256))
		}
	}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		if d.IsDir() || p == ManifestFile || p == ManifestTSR || listed[p] {
			return nil
		}
		if !d.Type().IsRegular() {
			problems = append(problems, fmt.Sprintf("%s: not a regular file, and not listed in the manifest", p))
			return nil
		}
		problems = append(problems, fmt.Sprintf("%s: not listed in the manifest", p))
		return nil
	})
	if err != nil {
		problems = append(problems, err.Error())
	}
	return problems
}

func hashFile(fsys fs.FS, p string) (string, int64, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
